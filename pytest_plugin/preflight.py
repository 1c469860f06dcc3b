"""The session's model settings, checked once the tests are collected and before any
runs: what would otherwise fail every LLM test separately, with the same message, is
one usage error (pytest's exit code 4) that names the setting and what to do.

Only what is cheap and certain is checked, and only when a collected test needs it:
a session with no LLM test, or whose LLM tests all talk to the simulator or a local
model, never fails on a key it does not use. (Values that are wrong whatever runs, a
base URL that is not a URL among them, are refused when the settings are resolved.)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pytest

from llmcheck.config.settings import SETTINGS, Resolved

SESSION_MODEL_FIXTURE = "llm_endpoint"
"""Every test that talks to the session's model has it (the ``llm`` fixture uses it)."""
WORKER_PROBLEM = "llmcheck_usage_error"
"""The key of an xdist worker's output that carries its usage error to the controller."""
LITELLM_FIXTURE = "llm"
"""Tests whose calls go through litellm, which must know the model's provider."""


def check_session_model(config: pytest.Config, items: list[pytest.Item],
                        running: Iterable[pytest.Item], resolved: dict[str, Resolved]) -> None:
    """Raise :class:`pytest.UsageError` when the session's configured model cannot be
    called at all by the collected tests that use it (of ``running``, those not skipped):
    the key's environment variable is unset or empty, or litellm cannot tell which
    provider serves the model. A test whose own ``model=`` is local needs neither.

    A pytest-xdist worker cannot stop the session with a usage error (the controller
    takes it for a crash): it runs nothing and hands the message to the controller,
    which raises it (:func:`raise_worker_problem`)."""
    try:
        _check(running, resolved)
    except pytest.UsageError as exc:
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is None:
            raise
        workeroutput[WORKER_PROBLEM] = str(exc)
        config.hook.pytest_deselected(items=list(items))
        items[:] = []


def raise_worker_problem(node: Any) -> None:
    """On the xdist controller: raise the usage error a worker found, if any."""
    problem = (getattr(node, "workeroutput", None) or {}).get(WORKER_PROBLEM)
    if problem:
        raise pytest.UsageError(problem)


def _check(items: Iterable[pytest.Item], resolved: dict[str, Resolved]) -> None:
    model = resolved["model"].value
    users = [item for item in items
             if SESSION_MODEL_FIXTURE in getattr(item, "fixturenames", ())]
    if not model or not users:
        return  # the simulator needs no key; a session with no model test imports nothing
    from llmcheck.model.local import is_local

    users = [item for item in users if not is_local(_own_model(item))]
    if is_local(model) or not users:
        return  # a local server: no key, no provider to resolve
    key_env = resolved["api_key_env"].value
    if key_env is not None and not os.environ.get(key_env, "").strip():
        raise pytest.UsageError(
            f"{_given(resolved, 'api_key_env')} names the environment variable that holds "
            f"the API key, and {key_env} is not set (or is empty) in this shell, so none of "
            f"the {len(users)} test(s) that call {model} could run: export {key_env}=<your "
            "key> first, or name the variable that holds it")
    if any(LITELLM_FIXTURE in getattr(item, "fixturenames", ()) for item in users):
        _check_provider(model, resolved)


def _check_provider(model: str, resolved: dict[str, Resolved]) -> None:
    """litellm must know which provider serves ``model`` (``openai/gpt-4o-mini``,
    ``gpt-4o-mini``); asked the way its completion call asks, offline. Anything else
    it could say is left to the first call, which reports it in full."""
    from llmcheck.model.failures import is_unknown_provider, unknown_provider_advice
    from llmcheck.model.provider import import_litellm

    litellm = import_litellm()  # the llm fixture's first call imports it anyway
    try:
        litellm.get_llm_provider(model, api_base=resolved["api_base"].value)
    except Exception as exc:  # noqa: BLE001 - not certain: the first call will say what is wrong
        if is_unknown_provider(exc):
            raise pytest.UsageError(
                f"{_given(resolved, 'model')}: {unknown_provider_advice(model)}") from None


def _given(resolved: dict[str, Resolved], name: str) -> str:
    """How the user set ``name``: ``--llm-model=foo``, ``LLMCHECK_MODEL=foo`` or
    ``llm_model = foo (ini)``, so the message points at the place to fix."""
    spec, value = SETTINGS[name], resolved[name].value
    source = resolved[name].source
    if source == "environment":
        return f"{spec.env}={value}"
    if source == "ini":
        return f"ini key {spec.ini} = {value}"
    return f"{spec.option}={value}"


def _own_model(item: pytest.Item) -> Any:
    """The ``model=`` of the item's own ``llm`` marker, if any."""
    marker = item.get_closest_marker("llm")
    return None if marker is None else marker.kwargs.get("model")
