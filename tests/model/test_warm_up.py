"""litellm's first call imports some 190 modules and builds its client (about 1 s,
against 25 ms for the next call). The plugin takes that cost at start-up
(``warm_litellm``), so the first sample's duration, and a latency requirement on
``total``, no longer carry it. Checked by what the first real call still imports, in a
fresh process: counts, not clocks."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys, warnings
warnings.simplefilter("ignore")
from llmcheck.model.provider import import_litellm, warm_litellm
from llmcheck.simulator.server import SimulatorServer
litellm = import_litellm()
before = set(sys.modules)
warm_litellm()
print(len(set(sys.modules) - before))
with SimulatorServer() as server:
    before = set(sys.modules)
    litellm.completion(model="openai/llmcheck-sim", api_base=server.url, api_key="sk-x",
                       messages=[{"role": "user", "content": "hello"}],
                       num_retries=0, max_retries=0)
    print(len(set(sys.modules) - before))
"""


def test_the_first_real_call_after_the_warm_up_imports_next_to_nothing():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300, check=True)
    by_warm_up, by_first_call = map(int, out.stdout.split()[-2:])
    assert by_warm_up > 100  # what the warm-up takes out of the first sample
    assert by_first_call <= 5, (
        f"the first call after warm_litellm still imported {by_first_call} modules")
