"""The environment that keeps litellm (and the tokenizer hub) off the network.

litellm reads these when it is imported: without them ``import litellm`` fetches its
cost map from GitHub (retrying for seconds on a machine with no internet) and
``token_counter`` reaches for a tokenizer hub. The plugin sets them when pytest
starts, before any test module (or the app it imports) imports litellm; the model
client sets them before its own first import. A value the user set wins.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def go_offline() -> None:
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
