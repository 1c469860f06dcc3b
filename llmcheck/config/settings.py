"""Validation of every user-settable run setting, shared by the decorator,
the marker, command-line options, environment variables and ini keys.

Each setting has one :class:`Setting` describing its type and accepted range;
:func:`validate` turns a raw value (a string from the command line or an ini
file, or a Python value from a decorator) into the typed value, or raises
:class:`~llmcheck.errors.UsageError` naming where the value came from, the
value, and what would be accepted.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmcheck.config.faults import fault_spec, parse_fault_rates
from llmcheck.config.latency import ACCEPTED as LATENCY_FORM
from llmcheck.config.latency import parse_latency
from llmcheck.config.names import DEFAULT_VERDICT, INTERVAL_METHODS, POLICY_NAMES, did_you_mean
from llmcheck.errors import UsageError

MAX_RUNS = 100_000
"""More samples than anyone means: a typo (an extra zero or twenty) would run forever."""
MAX_CONCURRENCY = 1_000


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "int", "float", "bool", "choice", "str", "url", "envname", "shard", "faults",
    # "latency"
    help: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        return "--llm-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "llm_" + self.name

    @property
    def env(self) -> str:
        return "LLMCHECK_" + self.name.upper()

    def accepted(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "str":
            return "a non-empty string"
        if self.kind == "url":
            return "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080/v1"
        if self.kind == "envname":
            return "the name of an environment variable, e.g. OPENAI_API_KEY"
        if self.kind == "shard":
            return "i/n with 1 <= i <= n, e.g. 2/4"
        if self.kind == "latency":
            return LATENCY_FORM
        if self.kind == "faults":
            return ("KIND:RATE pairs separated by commas, e.g. rate_limit:0.3,timeout:0.1, "
                    "rates adding up to at most 1")
        noun = "an integer" if self.kind == "int" else "a number"
        lo = hi = ""
        if self.low is not None:
            lo = f"{'>' if self.low_open else '>='} {_fmt(self.low)}"
        if self.high is not None:
            hi = f"{'<' if self.high_open else '<='} {_fmt(self.high)}"
        if lo and hi:
            return f"{noun} {lo} and {hi}"
        return f"{noun} {lo or hi}".rstrip()


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("runs", "int", "samples per LLM test; overrides the runs= of every marked "
                "test (default: the smallest fixed test that tells min_pass_rate - margin "
                "from min_pass_rate + margin at alpha and beta, 93 at the defaults)", None,
                low=1, high=MAX_RUNS),
        Setting("concurrency", "int", "samples of one test in flight at once (default 4)",
                4, low=1, high=MAX_CONCURRENCY),
        Setting("min_pass_rate", "float", "required pass rate for LLM tests that set none "
                "(default 0.9)", 0.9, low=0, high=1),
        Setting("confidence", "float", "confidence level of intervals and verdicts "
                "(default 0.95)", 0.95, low=0, high=1, low_open=True, high_open=True),
        Setting("verdict", "choice", "verdict policy: sequential (truncated SPRT, the "
                "default), threshold (observed rate >= required) or interval (lower bound >= "
                "required)", DEFAULT_VERDICT, choices=POLICY_NAMES),
        Setting("margin", "float", "sequential: half-width of the indifference zone around "
                "the required rate (default 0.05)", 0.05, low=0, high=0.5, low_open=True,
                high_open=True),
        Setting("alpha", "float", "sequential: chance of passing a test whose true rate is "
                "min_pass_rate - margin (default 0.05)", 0.05, low=0, high=0.5, low_open=True,
                high_open=True),
        Setting("beta", "float", "sequential: chance of failing a test whose true rate is "
                "min_pass_rate + margin (default 0.05)", 0.05, low=0, high=0.5, low_open=True,
                high_open=True),
        Setting("session_alpha", "float", "hold the chance that the session fails any LLM "
                "test whose true rate is min_pass_rate + margin to this: each of the K tests "
                "gets a fail-side error of 1-(1-A)^(1/K) (sequential: its beta; threshold, "
                "interval: enough runs) (default: off)", None, low=0, high=0.5,
                low_open=True, high_open=True),
        Setting("latency", "latency", "latency requirements of every LLM test that states "
                "none, e.g. 'p95 ttft <= 1.5s' (several separated by ';'): a quantile of a "
                "per-sample duration that must be at most a limit, judged by exact order "
                "statistics (default: none)"),
        Setting("interval", "choice", "confidence interval shown in reports: wilson "
                "(default) or clopper-pearson (exact)", "wilson", choices=INTERVAL_METHODS),
        Setting("early_stop", "bool", "stop launching samples once the verdict is settled "
                "(default true)", True),
        Setting("no_early_stop", "bool", "run every planned sample even once the verdict is "
                "settled", False),
        Setting("report_dir", "str", "directory for llmcheck.json (default reports)",
                "reports"),
        Setting("seed", "int", "session seed from which every sample's seed derives "
                "(default: random, printed in the header)", None, low=0),
        Setting("model", "str", "litellm model to test, e.g. openai/gpt-4o-mini or "
                "ollama/llama3; local/smollm2 or gguf:/path/model.gguf serves a local model "
                "on the CPU (llmcheck[local]) (default: the built-in simulator)"),
        Setting("local_context", "int", "context size in tokens of the local model server "
                "llmcheck starts for local/NAME and gguf:PATH (default 2048)", 2048, low=16),
        Setting("local_threads", "int", "CPU threads of that server (default: the cores, "
                "split between xdist workers, each of which starts its own)", None, low=1),
        Setting("api_base", "url", "base URL of the model's API, e.g. "
                "http://127.0.0.1:8080/v1 for a local server"),
        Setting("api_key_env", "envname", "NAME of the environment variable that holds the "
                "API key (never the key itself)"),
        Setting("temperature", "float", "sampling temperature sent with every call",
                None, low=0, high=2),
        Setting("max_tokens", "int", "max_tokens sent with every call", None, low=1),
        Setting("timeout", "float", "deadline in seconds for each attempt's whole answer "
                "(connect, headers, body; a stream: the whole stream), after which it counts "
                "as a timeout and is retried (default 60)", 60.0, low=0, low_open=True),
        Setting("retries", "int", "retries of a call on rate limits, timeouts, connection "
                "errors and 5xx, with exponential backoff (default 3)", 3, low=0),
        Setting("retry_budget", "float", "seconds from a call's start within which its "
                "retries must fit; a longer Retry-After or backoff gives up at once, saying "
                "so (default 120)", 120.0, low=0, low_open=True),
        Setting("backoff", "float", "initial retry backoff in seconds, doubled per retry "
                "with jitter; a Retry-After header wins (default 0.5)", 0.5, low=0),
        Setting("rpm", "float", "requests per minute per model, paced on our side for the "
                "llm fixture and for apps through llm_endpoint alike (split evenly between "
                "xdist workers)", None, low=0, low_open=True),
        Setting("max_cost", "float", "session budget in dollars, over the llm fixture's and "
                "llm_endpoint's calls: once spent, no request is sent and no new sample "
                "starts (split evenly between xdist workers)", None, low=0, low_open=True),
        Setting("max_calls", "int", "session budget in requests sent to the model (retries "
                "included; replays and faults the proxy serves are not), over the llm "
                "fixture's and llm_endpoint's calls: once spent, no request is sent and no "
                "new sample starts (split evenly between xdist workers)", None, low=1),
        Setting("max_error_share", "float", "the session names every LLM test whose share "
                "of infrastructure errors is above this (default 0.1)", 0.1, low=0, high=1),
        Setting("allow_unjudged", "bool", "let a session pass although the budget ran out "
                "before some LLM tests ran a sample (default: it fails, naming them)", False),
        Setting("cache", "choice", "record/replay of answers: off, read (replay, call on a "
                "miss), write (call and record), rw (replay, call and record on a miss)",
                "off", choices=("off", "read", "write", "rw")),
        Setting("cache_path", "str", "sqlite file of recorded answers (default "
                ".llmcheck/cache.sqlite)", ".llmcheck/cache.sqlite"),
        Setting("scenario", "str", "scenario file (YAML or JSON) for the built-in simulator "
                "(default: the one shipped with llmcheck)"),
        Setting("shard", "shard", "run only the i-th of n stable shares of the LLM tests "
                "(by a hash of the node id), e.g. 2/4 on the second of four CI machines; "
                "join the reports with llmcheck merge. Other tests run in every shard"),
        Setting("faults", "faults", "inject provider faults into every LLM test's model "
                "requests, e.g. rate_limit:0.3,timeout:0.1 (a test's @llmcheck.faults wins); "
                "seeded by the sample, so --llm-seed reproduces them"),
        Setting("keep_io", "int", "characters kept of each message sent and of the answer "
                "of a failing or errored sample's last model calls, in the reports (cut in the "
                "middle beyond this; passing samples keep none); 0 keeps none (default 2000)",
                2000, low=0, high=1_000_000),
        Setting("progress", "choice", "live per-test progress on a terminal: auto (only on an "
                "interactive terminal, never in CI), on, off", "auto",
                choices=("auto", "on", "off")),
        Setting("baseline", "str", "compare the session with this baseline or report "
                "(llmcheck baseline save) and list the tests whose pass rate dropped"),
        Setting("fail_on_regression", "bool", "with --llm-baseline, fail the session when a "
                "test's pass rate dropped significantly (by at least the regression margin)",
                False),
        Setting("regression_margin", "float", "smallest drop in pass rate that counts as a "
                "regression, however significant (default 0.05)", 0.05, low=0, high=1,
                high_open=True),
        Setting("regression_alpha", "float", "level of the regression test, after the "
                "correction for the number of tests compared (default 0.05)", 0.05, low=0,
                high=1, low_open=True, high_open=True),
        Setting("regression_test", "choice", "exact test of a drop in pass rate: boschloo "
                "(default, more powerful) or fisher", "boschloo",
                choices=("boschloo", "fisher")),
        Setting("regression_correction", "choice", "correction for the number of tests "
                "compared: holm (default; the chance of any false flag) or bh "
                "(Benjamini-Hochberg; the expected share of false flags)", "holm",
                choices=("holm", "bh")),
    ]
}

# Settings a test may set for itself with @llmcheck.repeat / @pytest.mark.llm.
MARKER_SETTINGS = (
    "runs", "concurrency", "min_pass_rate", "confidence", "verdict", "margin", "alpha",
    "beta", "interval", "early_stop", "model", "temperature", "max_tokens", "latency",
)


def marker_signature() -> str:
    """``runs=None, min_pass_rate=0.9, ...``: the marker's keywords with their defaults."""
    return ", ".join(f"{name}={SETTINGS[name].default!r}" for name in MARKER_SETTINGS)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The shapes of common API keys and tokens (OpenAI, Anthropic, Stripe, Groq, Google,
# Slack, GitHub, GitLab, Hugging Face, AWS, Replicate, Perplexity, NVIDIA, JWTs).
_KEY_PREFIX = re.compile(r"(sk-|sk_|rk_|pk_|gsk_|AIza|xox[abprs]-|ghp_|gho_|ghu_|ghs_|"
                         r"github_pat_|glpat-|hf_|AKIA|ASIA|r8_|pplx-|nvapi-|eyJ)")


def looks_like_a_key(value: str) -> bool:
    """Whether ``value`` has the shape of an API key rather than of a variable name:
    a known key prefix, or a long run of mixed-case letters and digits (variable
    names are words, usually in capitals)."""
    if _KEY_PREFIX.match(value):
        return True
    return (len(value) >= 24 and any(c.islower() for c in value)
            and any(c.isupper() for c in value) and any(c.isdigit() for c in value))
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def validate(name: str, value: Any, source: str, *, shown: str | None = None) -> Any:
    """Return ``value`` converted to the type of setting ``name``.

    ``source`` says where the value came from, e.g. ``"--llm-runs"``; the
    error message starts with ``source=value`` unless ``shown`` gives the
    whole assignment as the user wrote it.
    """
    __tracebackhide__ = True  # a usage error points at the user's line, not ours
    spec = SETTINGS[name]
    if shown is None:
        shown = f"{source}={value if isinstance(value, str) else repr(value)}"

    def bad(reason: str = "") -> UsageError:
        extra = f" ({reason})" if reason else ""
        return UsageError(f"{shown} is invalid{extra}: expected {spec.accepted()}")

    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise bad()
    if spec.kind == "choice":
        if isinstance(value, str) and value.strip().lower() in spec.choices:
            return value.strip().lower()
        raise bad()
    if spec.kind == "str":
        if isinstance(value, str) and value.strip():
            return value.strip()
        raise bad()
    if spec.kind == "url":
        url = value.strip() if isinstance(value, str) else ""
        try:
            parts = urlsplit(url)
            fine = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number, a bracket left open
            fine = False
        if fine:
            return url
        raise bad()
    if spec.kind == "envname":
        name = value.strip() if isinstance(value, str) else ""
        if _ENV_NAME.fullmatch(name) and not looks_like_a_key(name):
            return name
        if name:
            # Never echo what may be a secret.
            raise UsageError(f"{source} must be the NAME of the environment variable holding "
                             "the key (e.g. OPENAI_API_KEY), not the key itself; the value "
                             "given looks like a key or is not a variable name, and is not "
                             "shown")
        raise bad()
    if spec.kind == "shard":
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value) if isinstance(value, str) \
            else None
        if match is None:
            raise bad()
        i, n = int(match.group(1)), int(match.group(2))
        if not 1 <= i <= n:
            raise bad("out of range")
        return (i, n)
    if spec.kind == "latency":
        return parse_latency(value, shown)
    if spec.kind == "faults":
        # checked here, so a bad kind stops the session at once; the value is the plan's
        # canonical KIND:RATE form, which llmcheck.injection's FaultPlan.parse reads
        try:
            return fault_spec(parse_fault_rates(value))
        except UsageError as exc:
            raise bad(str(exc)) from None
    return _number(spec, value, bad)


def _number(spec: Setting, value: Any, bad: Any) -> float:
    """An int or float setting: parsed, finite and within the setting's range."""
    __tracebackhide__ = True  # a usage error points at the user's line, not ours
    if isinstance(value, bool):
        raise bad()
    try:
        if spec.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            number: float = int(value.strip()) if isinstance(value, str) else int(value)
        else:
            number = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise bad() from None
    if isinstance(number, float) and not math.isfinite(number):
        raise bad()
    if spec.low is not None and (number <= spec.low if spec.low_open else number < spec.low):
        raise bad("out of range")
    if spec.high is not None and (number >= spec.high if spec.high_open else number > spec.high):
        raise bad("out of range")
    return number


def validate_marker_kwargs(kwargs: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the keywords of ``@llmcheck.repeat`` / ``@pytest.mark.llm``.

    ``None`` values mean "not set here" and are dropped.
    """
    __tracebackhide__ = True  # a usage error points at the user's line, not ours
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in MARKER_SETTINGS:
            raise UsageError(
                f"{where}: unknown keyword {key}={value!r}{did_you_mean(key, MARKER_SETTINGS)}; "
                "accepted keywords: " + ", ".join(MARKER_SETTINGS)
            )
        if value is None:
            continue
        shown = f"{where}({key}={value!r})"
        check_python_type(key, value, shown)
        out[key] = validate(key, value, where, shown=shown)
    return out


def check_python_type(name: str, value: Any, shown: str) -> None:
    """A value given in Python (a decorator or marker keyword) has its setting's own type:
    no string is read as a number (``runs="20"`` is a mistake that a quote hides), a bool
    is not a number (``runs=True``), and a number is not a bool (``early_stop=1``). Text
    from the command line, the environment and ini files is parsed by :func:`validate`."""
    __tracebackhide__ = True  # a usage error points at the user's line, not ours
    spec = SETTINGS[name]
    if spec.kind == "int":
        fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    elif spec.kind == "float":
        fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif spec.kind == "bool":
        fits = isinstance(value, bool)
    elif spec.kind == "latency":
        fits = isinstance(value, (str, list, tuple))
    else:
        fits = isinstance(value, str)
    if not fits:
        raise UsageError(f"{shown} is invalid: expected {spec.accepted()} "
                         f"(got {type(value).__name__})")



@dataclass(frozen=True)
class Resolved:
    """A session setting's value and where it came from."""

    value: Any
    source: str  # "command line", "environment", "ini", "default"


def marker_settings(kwargs: Mapping[str, Any], where: str,
                    args: tuple[Any, ...] = ()) -> dict[str, Any]:
    """A marker's settings, validated: its keywords, and ``runs`` given as its one
    positional argument (``@pytest.mark.llm(20)``); "not set" (None) left out. The
    test's settings are resolved from these by :func:`llmcheck.records.resolve.resolve_test`."""
    __tracebackhide__ = True  # a usage error points at the user's line, not ours
    return validate_marker_kwargs(_with_positional_runs(kwargs, args, where), where)


def session_defaults() -> dict[str, Resolved]:
    """Every setting at its default, as if nothing were configured (scripts, tests)."""
    return {name: Resolved(spec.default, "default") for name, spec in SETTINGS.items()}


def _with_positional_runs(kwargs: Mapping[str, Any], args: tuple[Any, ...],
                          where: str) -> dict[str, Any]:
    """``@pytest.mark.llm(20)`` means runs=20; any other positional is an error."""
    kwargs = dict(kwargs)
    if args:
        if len(args) != 1 or "runs" in kwargs:
            raise UsageError(f"{where}{args!r}: positional arguments are not accepted "
                             "(except one: runs); pass keywords, e.g. @llmcheck.repeat(runs=20)")
        kwargs["runs"] = args[0]
    return kwargs
