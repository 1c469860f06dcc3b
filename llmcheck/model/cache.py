"""Record and replay of model answers, in one sqlite file.

Keyed by model, messages, the parameters that shape the answer, the sample
index and the call's ordinal among identical calls of that sample, so a suite
replays exactly the answers it recorded: checks can be changed and re-scored
without paying for calls again, and CI can replay at zero cost. The per-sample
seed that llmcheck derives from the session seed is *not* part of the key: a
recorded sample replays its recorded answer whatever the new session's seed
(a seed the test passes itself is, since it shapes the answer). API keys, auth
headers and transport settings are never part of the key or the stored value.

Modes: ``off`` (no cache), ``read`` (answer from the cache when it has the
key, otherwise call the model and store nothing), ``write`` (always call the
model and store the answer), ``rw`` (answer from the cache, call and store on
a miss).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

from llmcheck.errors import UsageError

CACHE_MODES = ("off", "read", "write", "rw")
_APP = "llmcheck-cache"
_VERSION = "2"  # 2: keys no longer hold the derived per-sample seed, and count identical calls
# Parameters that never belong in a key: they change how we reach the model,
# not what it answers (and some are secrets).
_NOT_IN_KEY = frozenset({
    "api_key", "api_base", "base_url", "headers", "extra_headers", "timeout",
    "num_retries", "max_retries", "metadata", "stream_options", "drop_params",
    "authorization", "organization",
})


def cache_key(model: str, messages: Any, params: dict[str, Any], sample_index: int,
              ordinal: int = 0) -> str:
    """A stable hex key for the ``ordinal``-th identical call of one sample."""
    shaping = {k: v for k, v in sorted(params.items())
               if k not in _NOT_IN_KEY and v is not None}
    blob = json.dumps(
        {"model": model, "messages": messages, "params": shaping, "sample": sample_index,
         "ordinal": ordinal},
        sort_keys=True, default=str, ensure_ascii=False,
    )
    # surrogatepass: a prompt quoting a lone surrogate still has a key (valid text
    # encodes as before, so recorded keys stay the same)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


_NUMBER = (int, float)
_FIELDS: dict[str, tuple[type, ...]] = {
    "text": (str,), "model": (str,), "finish_reason": (str, type(None)),
    "tool_calls": (list,), "usage": (dict,), "cost": (*_NUMBER, type(None)),
    "latency": _NUMBER, "time_to_first_token": (*_NUMBER, type(None)), "retries": (int,),
    "cached": (bool,), "gaps": (list,),
}
_REQUIRED = ("text", "model")


def payload_problem(payload: Any) -> str | None:
    """What is wrong with a stored answer (``Completion.to_dict()``), or None."""
    if not isinstance(payload, dict):
        return f"is a JSON {type(payload).__name__}, not an object"
    missing = [k for k in _REQUIRED if k not in payload]
    if missing:
        return f"has no {', '.join(missing)}"
    for key, value in payload.items():
        kinds = _FIELDS.get(key)
        if kinds is None:
            return f"has an unknown field {key!r}"
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            return f"has {key!r} of type {type(value).__name__}"
    return _nested_problem(payload)


def _nested_problem(payload: dict[str, Any]) -> str | None:
    for call in payload.get("tool_calls", []):
        if not (isinstance(call, dict) and isinstance(call.get("name"), str)
                and isinstance(call.get("arguments"), str)
                and isinstance(call.get("id"), (str, type(None)))
                and set(call) <= {"name", "arguments", "id"}):
            return "has a malformed tool call"
    usage = payload.get("usage", {})
    if not set(usage) <= {"prompt_tokens", "completion_tokens"} or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            for v in usage.values()):
        return "has malformed usage"
    if not all(isinstance(g, _NUMBER) and not isinstance(g, bool) and math.isfinite(g)
               and g >= 0 for g in payload.get("gaps", [])):
        return "has malformed gaps (finite numbers >= 0 of seconds)"
    for key in ("latency", "cost", "time_to_first_token", "retries"):
        value = payload.get(key)
        if value is not None and not (math.isfinite(value) and value >= 0):
            return f"has {key} {value!r}; it is a finite number >= 0"
    return None


def decode_payload(text: Any) -> dict[str, Any]:
    """The stored answer of a cache row's payload text (JSON of ``Completion.to_dict()``);
    a UsageError saying what is wrong with it."""
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError):
        problem: str | None = "is not valid JSON"
    except ValueError as exc:  # an integer of more than 4300 digits
        problem = f"is not valid JSON ({exc})"
    else:
        problem = payload_problem(payload)
    if problem is not None:
        raise UsageError(f"the recorded answer {problem}")
    return payload  # type: ignore[no-any-return]


class ResponseCache:
    """A thread-safe sqlite store of answers (as ``Completion.to_dict()`` dicts)."""

    def __init__(self, path: str | Path, mode: str) -> None:
        if mode not in CACHE_MODES:
            raise UsageError(f"cache mode {mode!r} is invalid: expected one of "
                             + ", ".join(CACHE_MODES))
        self.path = Path(path)
        self.mode = mode
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.write_problem: str | None = None
        """Why recording stopped (the first write the disk refused), else None."""
        self._lock = threading.Lock()
        self._closed_models: list[str] | None = None
        self._db = self._open()

    @property
    def reads(self) -> bool:
        return self.mode in ("read", "rw")

    @property
    def writes_enabled(self) -> bool:
        return self.mode in ("write", "rw")

    def _open(self) -> sqlite3.Connection:
        existed = self.path.exists() and self.path.stat().st_size > 0
        if not existed and self.mode == "read":
            raise UsageError(f"--llm-cache=read but the cache file {self.path} does not exist; "
                             "record it first with --llm-cache=write or rw")
        from llmcheck.files import create_private, directory_problem

        problem = directory_problem(self.path.parent)
        if problem is not None:
            raise UsageError(f"cannot create the cache file {self.path}: {problem}")
        if self.path.is_dir():
            raise UsageError(f"the cache file {self.path} is a folder; give a file path")
        try:
            create_private(self.path)
        except OSError as exc:
            raise UsageError(f"cannot create the cache file {self.path}: "
                             f"{exc.strerror or exc}") from None
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            if existed:
                rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
                if rows.get("app") != _APP:
                    raise UsageError(f"{self.path} is not an llmcheck cache (no llmcheck "
                                     "metadata); refusing to use or overwrite it")
                if rows.get("version") != _VERSION:
                    raise UsageError(f"{self.path} is an llmcheck cache of version "
                                     f"{rows.get('version')!r}; this llmcheck reads version "
                                     f"{_VERSION}. Use another --llm-cache-path or delete it")
                db.execute("SELECT key, payload FROM answers LIMIT 1").fetchall()
            else:
                db.executescript(
                    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                    "CREATE TABLE answers (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
                    "payload TEXT NOT NULL, created REAL DEFAULT (julianday('now')));"
                )
                db.executemany("INSERT INTO meta VALUES (?, ?)",
                               [("app", _APP), ("version", _VERSION)])
        except sqlite3.DatabaseError as exc:
            raise UsageError(f"{self.path} is not a usable llmcheck cache ({exc}); refusing to "
                             "overwrite it: choose another --llm-cache-path or delete it") from None
        return db

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.reads:
            return None
        with self._lock:
            row = self._db.execute("SELECT payload FROM answers WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        try:
            payload = decode_payload(row[0])
        except UsageError as exc:
            problem = str(exc).removeprefix("the recorded answer ")
            raise UsageError(f"cache error: the recorded answer for key {key[:12]}... in "
                             f"{self.path} {problem}; delete the cache file or re-record it "
                             "with --llm-cache=write") from None
        self.hits += 1
        return payload

    def put(self, key: str, model: str, payload: dict[str, Any]) -> None:
        """Store an answer. A write the disk refuses (full, read-only, gone) is no failure
        of the sample that made the call: recording stops, and :attr:`write_problem` says
        why, for the session's warnings."""
        if not self.writes_enabled or self.write_problem is not None:
            return
        from llmcheck.redact import scrub

        # never a key on disk; ASCII JSON, so that an answer with a lone surrogate
        # (which sqlite's UTF-8 cannot hold) is stored and replayed unchanged
        text = json.dumps(scrub(payload))
        with self._lock:
            try:
                self._db.execute("INSERT OR REPLACE INTO answers (key, model, payload) "
                                 "VALUES (?, ?, ?)", (key, model, text))
            except (sqlite3.Error, OSError) as exc:
                self.write_problem = f"{exc}; answers after it were not recorded"
                return
            self.writes += 1

    def recorded_models(self) -> list[str]:
        """The models this cache holds answers of (to explain a replay that never hits)."""
        with self._lock:
            if self._closed_models is not None:
                return self._closed_models
            rows = self._db.execute("SELECT DISTINCT model FROM answers ORDER BY model")
            return [row[0] for row in rows.fetchall()]

    def close(self) -> None:
        models = self.recorded_models()
        with self._lock:
            if self._closed_models is None:
                self._closed_models = models
                self._db.close()


def describe_replay(stats: Any, tests: list[Any]) -> tuple[str, bool]:
    """One line on how the cache served a session (a ``CacheStats``), and whether it
    signals trouble: a ``read`` session in which no call found its answer."""
    where = f"({stats.mode}, {stats.path})"
    if stats.mode == "write":
        return f"cache {where}: answers recorded for replay with --llm-cache=read", False
    total = stats.hits + stats.misses
    line = f"cache {where}: {stats.hits} of {total} call(s) replayed, {stats.misses} missed"
    if stats.mode != "read" or stats.hits or not total:
        return line, False
    return line + "; " + _zero_hits_cause(stats, tests), True


def _zero_hits_cause(stats: Any, tests: list[Any]) -> str:
    called = sorted({t.model for t in tests if t.model})
    recorded = list(stats.recorded_models)
    if not recorded:
        return ("nothing matched because the cache holds no answers: record them first "
                "with --llm-cache=write (or rw)")
    if not set(called) & set(recorded):
        return (f"nothing matched: the cache holds answers of {', '.join(recorded)}, but "
                f"this session called {', '.join(called) or 'no model'}")
    return ("nothing matched: the prompts or the parameters that shape an answer "
            "(temperature, max_tokens, tools...) differ from the recording, or the cache "
            "was recorded by another suite")
