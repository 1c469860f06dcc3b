r"""The local suites measure a real small model: SmolLM2-135M-Instruct on the CPU.

    pytest suites/local --llm-model=local/smollm2      # needs llmcheck[local] (README)

Their required rates were set from 400-sample measurements of that model (figures in
each file), made with

    pytest suites/local --llm-model=local/smollm2 --llm-runs=400 \
        --llm-verdict=threshold --llm-no-early-stop --llm-seed=400

so some pass, one is a strict ``xfail`` that shows a weakness, and the
temperature sweep shows the pass rate falling as the temperature rises. With no model
configured they are skipped at collection (the simulator's scripted answers know none
of these prompts), so they take no share of --llm-session-alpha."""

from __future__ import annotations

import os

import pytest

HERE = os.path.dirname(__file__)


def configured_model(config: pytest.Config) -> str:
    """--llm-model, LLMCHECK_MODEL or the llm_model ini key (in llmcheck's order)."""
    return (config.getoption("--llm-model") or os.environ.get("LLMCHECK_MODEL")
            or config.getini("llm_model") or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if configured_model(config):
        return
    skip = pytest.mark.skip(reason="measures a real small model: pytest suites/local "
                            "--llm-model=local/smollm2 (needs llmcheck[local], see the README)")
    for item in items:
        if str(item.path).startswith(HERE):
            item.add_marker(skip)
