"""Golden examples: compare an output with the expected answer.

One entry point, :func:`assert_golden`, with a ``method`` per kind of
answer: ``exact``, ``normalized`` (case, whitespace, punctuation, NFKC),
``fuzzy`` (edit-distance similarity), ``numeric`` (tolerances), ``json``
(structural equality with ignored paths and unordered lists), ``set`` (lists
of items in any order) and ``semantic`` (embedding cosine similarity, the
only method that does I/O, through a pluggable embedder).

Failure messages show where the answers differ: a unified diff for text,
the differing JSON paths with expected and actual values, the missing and
extra items of a set.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from llmcheck.checks.base import (
    MAX_LISTED,
    as_text,
    check_fraction,
    conclude,
    excerpt,
    excerpt_around,
    listing,
    short_repr,
)
from llmcheck.checks.schema import NotJSON, load_json, render_path
from llmcheck.checks.text import extract_number, number_in_output
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion

METHODS = ("exact", "normalized", "fuzzy", "numeric", "json", "set", "semantic")
DEFAULT_THRESHOLDS = {"fuzzy": 0.85, "semantic": 0.8, "set": 1.0}

Embedder = Callable[[list[str]], Sequence[Sequence[float]]]
"""Maps a list of texts to one embedding vector per text."""

# --------------------------------------------------------------------------- text normalization

_NON_WORD = re.compile(r"[^\w\s]")
_JOINERS = frozenset("'\u2019\u2018\u02bc-\u2010\u2011.\u00b7")


def normalize_text(text: str) -> str:
    """Canonical form for ``normalized`` comparison.

    NFKC (so ``ﬁ``/``fi``, full-width and compatibility forms agree), case
    folded, punctuation removed and whitespace collapsed. Punctuation inside a
    word that joins it (``don't``, ``e-mail``, ``U.S.A``) is dropped so the
    parts join (``dont``, ``email``, ``usa``); other punctuation becomes a space
    (``yes—really`` and ``yes — really`` agree); ``.`` and ``,`` between digits
    are kept (``3.14`` is not ``314``). Symbols (``$``, ``%``, ``+``, emoji) and
    accents are kept. Turkish dotless ``ı`` folds to ``i``, since ``ı.upper()`` is
    ``I``: that keeps the comparison invariant under any change of case.
    """
    folded = unicodedata.normalize("NFKC", text).casefold().replace("\u0131", "i")
    text = unicodedata.normalize("NFKC", folded)

    def replace(match: re.Match[str]) -> str:
        ch = match.group(0)
        if not unicodedata.category(ch).startswith("P"):
            return ch
        i = match.start()
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if ch in ".," and before.isdigit() and after.isdigit():
            return ch
        if ch in _JOINERS and _is_word(before) and _is_word(after):
            return ""
        return " "

    return " ".join(_NON_WORD.sub(replace, text).split())


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


# --------------------------------------------------------------------------- text diffs

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _visible(line: str, width: int = 160) -> str:
    line = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", line)
    return line if len(line) <= width else line[: width - 3] + "..."


def first_difference(a: str, b: str) -> int:
    """Index of the first character where ``a`` and ``b`` differ (O(n log n), C-speed)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def text_diff(expected: str, actual: str, *, max_lines: int = 30) -> str:
    """Where two texts first differ, and a unified diff (cut) when they span lines."""
    at = first_difference(expected, actual)
    parts = [
        f"first difference at char {at:,}: expected "
        f"{excerpt_around(expected, at, at + 1, 30, position=False)}, got "
        f"{excerpt_around(actual, at, at + 1, 30, position=False)}"
    ]
    exp_lines = expected.splitlines()
    act_lines = actual.splitlines()
    if len(exp_lines) > 1 or len(act_lines) > 1:
        limit = 400  # difflib is quadratic in the worst case: diff the beginning only
        diff = list(difflib.unified_diff(exp_lines[:limit], act_lines[:limit], "expected",
                                         "output", n=1, lineterm=""))
        shown = [_visible(line) for line in diff[:max_lines]]
        if len(diff) > max_lines:
            shown.append(f"... ({len(diff) - max_lines} more diff lines)")
        if len(exp_lines) > limit or len(act_lines) > limit:
            shown.append(f"(diff of the first {limit} lines)")
        parts.append("\n".join(shown))
    return "\n".join(parts)


# --------------------------------------------------------------------------- JSON comparison

_PATH_TOKEN = re.compile(
    r"\.\.(?P<deep_key>[A-Za-z_][\w-]*|\*)"
    r"|\.(?P<key>[A-Za-z_][\w-]*|\*)"
    r"|\[(?P<index>\d+|\*)\]"
    r"|\[(?P<quoted>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]"
)
_ANY = object()
_DEEP = object()


def parse_json_path(path: str) -> tuple[Any, ...]:
    """``$.items[*].ts`` -> tokens; supports ``.key``, ``['key']``, ``[n]``, ``[*]``, ``.*``
    and ``..key`` (at any depth)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise UsageError(f"ignore_paths: {path!r} is not a JSON path; write e.g. '$.id', "
                         "'$.items[*].ts', \"$['a key']\" or '$..ts'")
    tokens: list[Any] = []
    pos = 1
    while pos < len(path):
        match = _PATH_TOKEN.match(path, pos)
        if match is None:
            raise UsageError(f"ignore_paths: cannot parse {path!r} at char {pos} "
                             f"({path[pos:]!r}); accepted: .key, ['key'], [0], [*], .*, ..key")
        if match.group("deep_key") is not None:
            tokens.append(_DEEP)
            key = match.group("deep_key")
            tokens.append(_ANY if key == "*" else key)
        elif match.group("key") is not None:
            key = match.group("key")
            tokens.append(_ANY if key == "*" else key)
        elif match.group("index") is not None:
            index = match.group("index")
            tokens.append(_ANY if index == "*" else int(index))
        else:
            quoted = match.group("quoted")
            tokens.append(json.loads('"' + quoted[1:-1].replace('"', '\\"') + '"')
                          if quoted.startswith("'") else json.loads(quoted))
        pos = match.end()
    return tuple(tokens)


def _path_matches(tokens: tuple[Any, ...], path: tuple[Any, ...]) -> bool:
    if not tokens:
        return not path
    head = tokens[0]
    if head is _DEEP:
        return any(_path_matches(tokens[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    step = path[0]
    if head is _ANY:
        ok = True
    elif isinstance(head, int):
        ok = isinstance(step, int) and step == head
    else:
        ok = isinstance(step, str) and step == head
    return ok and _path_matches(tokens[1:], path[1:])


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _scalar_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class JsonComparer:
    """Structural JSON equality with ignored paths and optionally unordered lists."""

    def __init__(self, ignore_paths: Iterable[str] = (), unordered_lists: bool = False) -> None:
        self.patterns = [parse_json_path(p) for p in ignore_paths]
        self.unordered = unordered_lists

    def ignored(self, path: tuple[Any, ...]) -> bool:
        return any(_path_matches(p, path) for p in self.patterns)

    def canonical(self, value: Any, path: tuple[Any, ...] = ()) -> Any:
        """``value`` with ignored paths removed, integral floats as ints and (when
        unordered) lists sorted: equal canonical forms mean equal values."""
        if isinstance(value, dict):
            return {k: self.canonical(v, path + (k,)) for k, v in value.items()
                    if not (self.patterns and self.ignored(path + (k,)))}
        if isinstance(value, (list, tuple)):
            items = [None if (self.patterns and self.ignored(path + (i,)))
                     else self.canonical(v, path + (i,)) for i, v in enumerate(value)]
            if self.unordered:
                items.sort(key=_sort_key)
            return items
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def diff(self, expected: Any, actual: Any) -> list[str]:
        """Differences as ``path: expected X, got Y`` lines (empty when equal)."""
        out: list[str] = []
        self._diff(expected, actual, (), out)
        return out

    def _diff(self, exp: Any, act: Any, path: tuple[Any, ...], out: list[str]) -> None:
        if len(out) > MAX_LISTED or (self.patterns and self.ignored(path)):
            return
        where = render_path(path)
        if isinstance(exp, dict) and isinstance(act, dict):
            for key, value in exp.items():
                child = path + (key,)
                if key not in act:
                    if not (self.patterns and self.ignored(child)):
                        out.append(f"{render_path(child)}: missing (expected {_show(value)})")
                else:
                    self._diff(value, act[key], child, out)
            for key, value in act.items():
                child = path + (key,)
                if key not in exp and not (self.patterns and self.ignored(child)):
                    out.append(f"{render_path(child)}: unexpected key (got {_show(value)})")
            return
        if isinstance(exp, (list, tuple)) and isinstance(act, (list, tuple)):
            if self.unordered:
                self._diff_unordered(exp, act, path, out)
                return
            for i in range(min(len(exp), len(act))):
                self._diff(exp[i], act[i], path + (i,), out)
            for i in range(len(act), len(exp)):
                out.append(f"{render_path(path + (i,))}: missing (expected {_show(exp[i])})")
            for i in range(len(exp), len(act)):
                out.append(f"{render_path(path + (i,))}: unexpected item (got {_show(act[i])})")
            return
        if _kind(exp) != _kind(act):
            out.append(f"{where}: expected {_kind(exp)} {_show(exp)}, got {_kind(act)} "
                       f"{_show(act)}")
        elif not _scalar_equal(exp, act):
            out.append(f"{where}: expected {_show(exp)}, got {_show(act)}")

    def _diff_unordered(self, exp: Sequence[Any], act: Sequence[Any], path: tuple[Any, ...],
                        out: list[str]) -> None:
        def keyed(items: Sequence[Any]) -> Counter[str]:
            return Counter(_sort_key(self.canonical(v, path + (i,))) for i, v in enumerate(items))

        exp_keys, act_keys = keyed(exp), keyed(act)
        missing = list((exp_keys - act_keys).elements())
        extra = list((act_keys - exp_keys).elements())
        where = render_path(path)
        if missing:
            out.append(f"{where}: {len(missing)} item(s) missing (any order): "
                       + ", ".join(_cut(m) for m in missing[:5]))
        if extra:
            out.append(f"{where}: {len(extra)} unexpected item(s) (any order): "
                       + ", ".join(_cut(m) for m in extra[:5]))


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _cut(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- sets

_ITEM_SPLIT = re.compile(r"\r?\n|[,;]")
_BULLET = re.compile(r"^\s*(?:[-*+\u2022\u00b7\u2013\u2014]|\d{1,3}[.)]|[A-Za-z][)])\s+")
_CONJUNCTION = re.compile(r"^(?:and|or)\s+", re.IGNORECASE)


def split_items(text: str) -> list[str]:
    """Items of a list written as text: split at newlines, commas and semicolons,
    bullets (``-``, ``*``, ``•``, ``1.``, ``a)``) and a leading ``and``/``or``
    removed, each :func:`normalize_text`-ed, empty ones dropped. Commas inside
    an item (``1,000``) split it: write such lists one item per line."""
    items = []
    for piece in _ITEM_SPLIT.split(text):
        piece = _CONJUNCTION.sub("", _BULLET.sub("", piece).strip())
        normalized = normalize_text(piece)
        if normalized:
            items.append(normalized)
    return items


# --------------------------------------------------------------------------- semantic


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 when either vector is zero."""
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    return 0.0 if norm == 0 else max(-1.0, min(1.0, dot / norm))


def _embed_pair(embed: Embedder | None, texts: list[str]) -> tuple[list[float], list[float]]:
    if embed is None:
        from llmcheck.model.client import default_embedder  # lazily: only this path needs a model

        embed = default_embedder()
    vectors = embed(texts)
    try:
        vectors = [[float(x) for x in v] for v in vectors]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"assert_golden(semantic): embed must return one list of floats per "
                         f"text ({exc})") from None
    if len(vectors) != 2 or len(vectors[0]) != len(vectors[1]) or not vectors[0]:
        raise UsageError(
            "assert_golden(semantic): embed must return 2 vectors of the same non-zero length "
            f"for 2 texts, got {len(vectors)} of lengths {[len(v) for v in vectors]}")
    return vectors[0], vectors[1]


# --------------------------------------------------------------------------- assert_golden


def _fmt(x: float) -> str:
    return f"{x:g}"


class _Options(NamedTuple):
    """The method-specific options of :func:`assert_golden`, ``None`` when not given."""

    rel_tol: float | None
    abs_tol: float | None
    pattern: str | None
    ignore_paths: Iterable[str] | None
    unordered_lists: bool | None
    lenient: bool | None
    normalize: bool | None
    embed: Embedder | None


_METHOD_OPTIONS: dict[str, frozenset[str]] = {
    "numeric": frozenset({"rel_tol", "abs_tol", "pattern"}),
    "json": frozenset({"ignore_paths", "unordered_lists", "lenient"}),
    "fuzzy": frozenset({"normalize"}),
    "semantic": frozenset({"embed"}),
}
"""The options each method accepts (``threshold``: the methods in DEFAULT_THRESHOLDS)."""
_OPTION_OWNERS = {"threshold": "fuzzy, semantic, set", "rel_tol": "numeric",
                  "abs_tol": "numeric", "pattern": "numeric", "ignore_paths": "json",
                  "unordered_lists": "json", "lenient": "json", "normalize": "fuzzy",
                  "embed": "semantic"}
"""The methods that take each option, for the message naming a misplaced one."""


def assert_golden(
    output: Any,
    expected: Any,
    method: str = "exact",
    threshold: float | None = None,
    *,
    rel_tol: float | None = None,
    abs_tol: float | None = None,
    pattern: str | None = None,
    ignore_paths: Iterable[str] | None = None,
    unordered_lists: bool | None = None,
    lenient: bool | None = None,
    normalize: bool | None = None,
    embed: Embedder | None = None,
) -> float | None:
    """Compare the output with the expected (golden) answer; returns the score.

    Methods (and the options each accepts; others raise :class:`UsageError`):

    - ``exact``: the texts are identical. Score 1.0 or 0.0.
    - ``normalized``: equal after :func:`normalize_text` (case, whitespace,
      punctuation, NFKC). Score 1.0 or 0.0.
    - ``fuzzy``: similarity ratio of the normalized texts (``normalize=False``:
      raw texts) >= ``threshold`` (default 0.85). The ratio is rapidfuzz's
      ``fuzz.ratio`` / 100 (Indel distance, ``2*matches/total``), in O(n*m/64);
      compare long outputs with short references, not 1 MB with 1 MB.
    - ``numeric``: the first number in the output (or ``pattern``'s group) is
      ``math.isclose`` to ``expected`` with ``rel_tol`` (default 1e-9) and
      ``abs_tol`` (default 0). Score: the number found.
    - ``json``: structurally equal JSON (``expected`` may be a value or JSON
      text); numbers compare by value (1 == 1.0, but true != 1);
      ``ignore_paths`` (``'$.id'``, ``'$.items[*].ts'``, ``'$..ts'``) are skipped
      on both sides; ``unordered_lists=True`` compares every array as a
      multiset; ``lenient=True`` as in :func:`assert_json`. Score 1.0 or 0.0.
    - ``set``: the items of the output (see :func:`split_items`) equal the
      expected items (a list, or text split the same way); with ``threshold``,
      Jaccard similarity >= threshold instead. Score: the Jaccard similarity.
    - ``semantic``: cosine similarity of embeddings >= ``threshold`` (default
      0.8). ``embed(texts) -> vectors`` is any callable; by default
      ``llmcheck.model.client.default_embedder()`` (an embedding model through
      litellm). Score: the similarity.

    Recorded as ``golden.<method>`` with its options, e.g.
    ``golden.fuzzy(>=0.85)``; ``value`` is the score. Inside ``soft()`` a failed
    comparison still returns its score.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not ours
    options = _Options(rel_tol, abs_tol, pattern, ignore_paths, unordered_lists, lenient,
                       normalize, embed)
    threshold = _check_arguments(method, threshold, options)
    return _GOLDEN_METHODS[method](output, expected, threshold, options)


def _check_arguments(method: str, threshold: float | None, options: _Options) -> float | None:
    """Reject an unknown method, an option the method does not take or a threshold
    outside [0, 1] with a UsageError; returns the threshold as a float (or None)."""
    __tracebackhide__ = True
    if method not in METHODS:
        raise UsageError(f"assert_golden: unknown method {method!r}; accepted: {list(METHODS)}")
    allowed = _METHOD_OPTIONS.get(method, frozenset())
    wrong = [k for k, v in options._asdict().items() if v is not None and k not in allowed]
    if threshold is not None and method not in DEFAULT_THRESHOLDS:
        wrong.insert(0, "threshold")
    if wrong:
        raise UsageError(f"assert_golden(method={method!r}) does not take "
                         + ", ".join(f"{k} (only {_OPTION_OWNERS[k]})" for k in wrong))
    if threshold is None:
        return None
    return check_fraction("assert_golden", "threshold", threshold)


def _pass_fail(name: str, passed: bool, message: str | None) -> float:
    """Record a comparison scored 1.0 (equal) or 0.0 and return the score."""
    __tracebackhide__ = True
    score = 1.0 if passed else 0.0
    conclude(name, passed, message, score)
    return score


def _texts(output: Any, expected: Any, method: str) -> tuple[str, str]:
    """The output's text and the expected text, for the methods comparing texts."""
    __tracebackhide__ = True
    text = as_text(output, f"assert_golden({method})")
    if not isinstance(expected, (str, Completion)):
        raise UsageError(f"assert_golden({method}): expected must be a str, got "
                         f"{type(expected).__name__} {short_repr(expected)}")
    return text, expected.text if isinstance(expected, Completion) else expected


def _golden_exact(output: Any, expected: Any, threshold: float | None,
                  options: _Options) -> float:
    __tracebackhide__ = True
    text, reference = _texts(output, expected, "exact")
    passed = text == reference
    return _pass_fail("golden.exact", passed, None if passed else text_diff(reference, text))


def _golden_normalized(output: Any, expected: Any, threshold: float | None,
                       options: _Options) -> float:
    __tracebackhide__ = True
    text, reference = _texts(output, expected, "normalized")
    a, b = normalize_text(reference), normalize_text(text)
    passed = a == b
    return _pass_fail("golden.normalized", passed,
                      None if passed else "normalized texts differ; " + text_diff(a, b))


def _golden_fuzzy(output: Any, expected: Any, threshold: float | None,
                  options: _Options) -> float:
    __tracebackhide__ = True
    text, reference = _texts(output, expected, "fuzzy")
    limit = DEFAULT_THRESHOLDS["fuzzy"] if threshold is None else threshold
    use_normal = options.normalize is None or options.normalize
    a, b = (normalize_text(reference), normalize_text(text)) if use_normal else (reference,
                                                                                 text)
    from rapidfuzz import fuzz

    score = fuzz.ratio(a, b) / 100.0
    passed = score >= limit
    name = f"golden.fuzzy(>={_fmt(limit)}{'' if use_normal else ', raw'})"
    message = None
    if not passed:
        message = f"similarity {score:.3f} < {_fmt(limit)}; " + text_diff(a, b)
    conclude(name, passed, message, round(score, 6))
    return score


def _golden_semantic(output: Any, expected: Any, threshold: float | None,
                     options: _Options) -> float:
    __tracebackhide__ = True
    text, reference = _texts(output, expected, "semantic")
    limit = DEFAULT_THRESHOLDS["semantic"] if threshold is None else threshold
    first, second = _embed_pair(options.embed, [text, reference])
    score = cosine(first, second)
    passed = score >= limit
    message = None
    if not passed:
        message = (f"cosine similarity {score:.3f} < {_fmt(limit)}: expected "
                   f"{excerpt(reference, 120)}, got {excerpt(text, 120)}")
    conclude(f"golden.semantic(>={_fmt(limit)})", passed, message, round(score, 6))
    return score


def _golden_numeric(output: Any, expected: Any, threshold: float | None,
                    options: _Options) -> float | None:
    __tracebackhide__ = True
    rel_tol, abs_tol = options.rel_tol, options.abs_tol
    for key, tol in (("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float))
                                or not tol >= 0):
            raise UsageError(f"assert_golden(numeric): {key} must be a number >= 0, got {tol!r}")
    rel = 1e-9 if rel_tol is None else float(rel_tol)
    absolute = 0.0 if abs_tol is None else float(abs_tol)
    target = _numeric_target(expected)
    opts = [f"rel_tol={_fmt(rel)}" if rel_tol is not None else "",
            f"abs_tol={_fmt(absolute)}" if abs_tol is not None else ""]
    opts_text = ", ".join(o for o in opts if o)
    name = f"golden.numeric({opts_text})" if opts_text else "golden.numeric"
    number, written = number_in_output(output, options.pattern, 0, "assert_golden(numeric)")
    if number is None:
        conclude(name, False, written)
        return None
    passed = math.isclose(number, target, rel_tol=rel, abs_tol=absolute)
    message = None
    if not passed:
        off = abs(number - target)
        rel_off = f" ({off / abs(target):.2%})" if target else ""
        message = (f"expected {_fmt(target)} (rel_tol={_fmt(rel)}, abs_tol={_fmt(absolute)}), "
                   f"got {_fmt(number)} (written {written!r}): off by {_fmt(off)}{rel_off}")
    conclude(name, passed, message, number)
    return number


def _numeric_target(expected: Any) -> float:
    """The expected number: a finite number, or the first number in a str."""
    __tracebackhide__ = True
    if isinstance(expected, bool):
        raise UsageError("assert_golden(numeric): expected must be a number, got a bool")
    if isinstance(expected, str):
        parsed, _ = extract_number(expected)
        if parsed is None:
            raise UsageError(f"assert_golden(numeric): expected {expected!r} holds no number")
        return parsed
    if isinstance(expected, (int, float)) and math.isfinite(expected):
        return expected
    raise UsageError(f"assert_golden(numeric): expected must be a finite number or a str "
                     f"holding one, got {short_repr(expected)}")


def _golden_json(output: Any, expected: Any, threshold: float | None,
                 options: _Options) -> float:
    __tracebackhide__ = True
    ignore_paths: Iterable[str] = options.ignore_paths or ()
    unordered, lenient = bool(options.unordered_lists), bool(options.lenient)
    if isinstance(ignore_paths, str):
        ignore_paths = [ignore_paths]
    comparer = JsonComparer(list(ignore_paths), unordered)
    opts = []
    if unordered:
        opts.append("unordered_lists")
    if comparer.patterns:
        opts.append(f"ignore={short_repr(list(ignore_paths), 60)}")
    if lenient:
        opts.append("lenient")
    name = f"golden.json({', '.join(opts)})" if opts else "golden.json"
    try:
        # only text can fail to parse: other values are taken as parsed JSON
        reference = load_json(expected, lenient=False, check="assert_golden(json)").data
    except NotJSON as err:
        raise UsageError(f"assert_golden(json): expected is not JSON: {err.reason}") from None
    try:
        actual = load_json(output, lenient=lenient, check="assert_golden(json)").data
    except NotJSON as err:
        hint = ""
        if err.candidate is not None:
            hint = f"; lenient=True would parse it ({err.candidate.where()})"
        return _pass_fail(name, False, err.reason + hint)
    differences = comparer.diff(reference, actual)
    if not differences:
        return _pass_fail(name, True, None)
    count = len(differences)
    more = "+" if count > MAX_LISTED else ""
    return _pass_fail(name, False, f"{count}{more} difference(s) from the expected JSON:\n"
                      f"{listing(differences)}")


def _golden_set(output: Any, expected: Any, threshold: float | None,
                options: _Options) -> float:
    __tracebackhide__ = True
    text = as_text(output, "assert_golden(set)")
    want, got = set(_set_reference(expected)), set(split_items(text))
    union = want | got
    score = len(want & got) / len(union) if union else 1.0
    passed = want == got if threshold is None else score >= threshold
    name = "golden.set" if threshold is None else f"golden.set(>={_fmt(threshold)})"
    message = None
    if not passed:
        missing, extra = sorted(want - got), sorted(got - want)
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {short_repr(missing, 300)}")
        if extra:
            parts.append(f"extra {len(extra)}: {short_repr(extra, 300)}")
        need = "equal sets" if threshold is None else f"Jaccard >= {_fmt(threshold)}"
        message = f"Jaccard {score:.3f}, need {need}; " + "; ".join(parts)
    conclude(name, passed, message, round(score, 6))
    return score


def _set_reference(expected: Any) -> list[str]:
    """The expected items, normalized: a str split like the output, or a list of str."""
    __tracebackhide__ = True
    if isinstance(expected, str):
        return split_items(expected)
    if isinstance(expected, Iterable) and not isinstance(expected, (bytes, dict)):
        reference = []
        for item in expected:
            if not isinstance(item, str):
                raise UsageError(f"assert_golden(set): expected items must be str, got "
                                 f"{short_repr(item)}")
            normalized = normalize_text(item)
            if normalized:
                reference.append(normalized)
        return reference
    raise UsageError(f"assert_golden(set): expected must be a list of str or a str, got "
                     f"{short_repr(expected)}")


_GoldenMethod = Callable[[Any, Any, float | None, _Options], float | None]
_GOLDEN_METHODS: dict[str, _GoldenMethod] = {
    "exact": _golden_exact,
    "normalized": _golden_normalized,
    "fuzzy": _golden_fuzzy,
    "numeric": _golden_numeric,
    "json": _golden_json,
    "set": _golden_set,
    "semantic": _golden_semantic,
}
"""One comparison per method: ``(output, expected, threshold, options) -> score``."""
