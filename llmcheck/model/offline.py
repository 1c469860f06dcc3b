"""The environment that keeps litellm (and the tokenizer hub) off the network, set only
where llmcheck is used.

litellm reads these when it is imported: without them ``import litellm`` fetches its
cost map from GitHub (retrying for seconds on a machine with no internet) and
``token_counter`` reaches for a tokenizer hub. So they must be set before the first
import, but only in a process that uses llmcheck: a pytest session with no LLM test
must see its environment, and litellm, exactly as without llmcheck installed.

- :func:`go_offline` sets them (a value the user set wins); the model client calls it
  before its own first import of litellm.
- :class:`OfflineBeforeImport` is a ``sys.meta_path`` hook for a pytest session that
  does not know yet whether it uses llmcheck: when something is about to import
  litellm (a test module or conftest importing the app under test, at collection),
  it looks at the source files importing it and calls :func:`go_offline` first if
  one of them uses llmcheck (:func:`mentions_llmcheck`).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import FrameType, ModuleType

OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

WATCHED = ("litellm", "huggingface_hub", "tokenizers")
"""The packages that read :data:`OFFLINE_ENV` when imported."""

_USES_LLMCHECK = re.compile(
    r"\bllmcheck\b"                               # import llmcheck / from llmcheck ...
    r"|\bmark\.llm(?:_faults)?\b"                 # @pytest.mark.llm(...)
    r"|\bllm_(?:endpoint|faults|sample)\b"        # the plugin's fixtures, by name
    r"|\bdef\s+\w+\s*\([^)]*\bllm\b")             # a test or fixture taking `llm`
_NOT_USER = (
    str(Path(__file__).resolve().parents[1]) + os.sep,  # llmcheck itself
    *{os.path.join(p, "") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)},
)
"""Files that say nothing about the user's code: llmcheck's own, the interpreter's and
the environment's (pytest, installed packages)."""


def go_offline() -> None:
    """Set :data:`OFFLINE_ENV` in ``os.environ``, keeping any value already set."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


def mentions_llmcheck(source: str) -> bool:
    """Whether a Python source uses llmcheck: imports it, marks a test ``llm`` or asks
    for one of the plugin's fixtures. Read before the module runs, so a cheap text test."""
    return _USES_LLMCHECK.search(source) is not None


class OfflineBeforeImport:
    """A ``sys.meta_path`` hook: just before the first import of a :data:`WATCHED`
    package, :func:`go_offline` if a user source file on the importing call stack
    (a test module, a conftest, the app they import) :func:`mentions_llmcheck`.
    It never loads anything itself. :meth:`install` / :meth:`remove` put it in
    place and take it out (never from inside an import: the import system is going
    through ``sys.meta_path`` then). ``skip``: more folders that are not the user's
    (the pytest plugin's own, which runs in every session)."""

    def __init__(self, skip: Iterable[str | os.PathLike[str]] = ()) -> None:
        self._seen: dict[str, bool] = {}
        self._skip = (*_NOT_USER, *(os.path.join(os.path.abspath(d), "") for d in skip))

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)  # type: ignore[arg-type]

    def remove(self) -> None:
        while self in sys.meta_path:
            sys.meta_path.remove(self)  # type: ignore[arg-type]

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname.partition(".")[0] not in WATCHED or fullname in sys.modules:
            return None
        if self._imported_by_a_user_of_llmcheck(sys._getframe(1)):
            go_offline()
        return None  # the normal finders import it, now with the environment set

    def invalidate_caches(self) -> None:
        self._seen.clear()

    def _imported_by_a_user_of_llmcheck(self, frame: FrameType | None) -> bool:
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.endswith(".py") and not filename.startswith(self._skip):
                uses = self._seen.get(filename)
                if uses is None:
                    uses = self._seen[filename] = _file_mentions_llmcheck(filename)
                if uses:
                    return True
            frame = frame.f_back
        return False


def _file_mentions_llmcheck(filename: str) -> bool:
    try:
        source = Path(filename).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return mentions_llmcheck(source)
