"""The built-in LLM simulator: an OpenAI-compatible HTTP server on loopback.

With no model configured, llmcheck talks to this simulator over real HTTP
(through litellm as ``openai/<any name>``), so every suite runs on a fresh
machine with no API key. A *scenario* says what it answers (weighted answer
variants per prompt pattern, some of them labelled defects), how fast, and how
often it fails; ``default.yaml`` ships one covering the example suites.

    from llmcheck.simulator import start_simulator

    with start_simulator() as sim:
        litellm.completion(model="openai/llmcheck-sim", api_base=sim.url, api_key="sk-sim",
                           messages=[{"role": "user", "content": "Hi"}])

Importing this package imports neither litellm nor aiohttp (aiohttp is loaded
when a server starts).
"""

from __future__ import annotations

from llmcheck.simulator.embeddings import embed
from llmcheck.simulator.engine import Engine
from llmcheck.simulator.request import RequestError
from llmcheck.simulator.scenario import (
    DefaultRoute,
    ErrorRates,
    Fault,
    Latency,
    Route,
    Scenario,
    ToolCall,
    Variant,
    default_scenario,
    load_scenario,
    parse_scenario,
)
from llmcheck.simulator.server import FAULT_HEADER, SimulatorServer, start_simulator

__all__ = [
    "FAULT_HEADER",
    "DefaultRoute",
    "Engine",
    "ErrorRates",
    "Fault",
    "Latency",
    "RequestError",
    "Route",
    "Scenario",
    "SimulatorServer",
    "ToolCall",
    "Variant",
    "default_scenario",
    "embed",
    "load_scenario",
    "parse_scenario",
    "start_simulator",
]
