"""``llmcheck serve``: run the simulator in the foreground until Ctrl-C.

Wired into the ``llmcheck`` console script through :func:`add_parser` and
:func:`run`; also runnable alone as ``python -m llmcheck.simulator.cli serve``.
The first line printed is ``llmcheck simulator listening on <base URL>`` so
scripts can read the URL (useful with ``--port 0``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmcheck.errors import UsageError
from llmcheck.loopback import add_listen_arguments, serve_until_interrupted

if TYPE_CHECKING:
    from llmcheck.simulator.server import SimulatorServer


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to an argparse subparsers object and return it."""
    parser = subparsers.add_parser(
        "serve",
        help="run the built-in OpenAI-compatible LLM simulator",
        description=(
            "Serve the llmcheck LLM simulator (an OpenAI-compatible API) until Ctrl-C. "
            "Point any OpenAI client or litellm at the printed base URL."
        ),
    )
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        default=None,
        help="scenario file (YAML or JSON); default: the shipped default scenario",
    )
    add_listen_arguments(parser, port=8000, port_help="port to listen on (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    local = parser.add_argument_group(
        "a local model instead (llmcheck[local])",
        "serve a GGUF model with llama.cpp's OpenAI-compatible server instead of the simulator")
    local.add_argument("--gguf", metavar="MODEL", default=None,
                       help="local/smollm2 (the packaged model) or the path of a GGUF file")
    local.add_argument("--context", type=int, default=None, metavar="TOKENS",
                       help="context size in tokens (default 2048)")
    local.add_argument("--threads", type=int, default=None, metavar="N",
                       help="CPU threads (default: every core this process may use)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM; return the process exit code."""
    from llmcheck.simulator.server import SimulatorServer

    if args.gguf is not None:
        return run_local(args)
    if args.context is not None or args.threads is not None:
        return _error("--context and --threads apply to a local model: add --gguf MODEL")
    try:
        server = SimulatorServer(args.scenario, host=args.host, port=args.port, seed=args.seed)
        server.start()
    except UsageError as exc:
        return _error(str(exc))

    def banner() -> None:
        print(f"llmcheck simulator listening on {server.url}", flush=True)
        print(_usage_lines(server), flush=True)

    serve_until_interrupted(server, banner)
    print(f"llmcheck simulator stopped after {server.request_count} requests", flush=True)
    return 0


def _error(message: str) -> int:
    from llmcheck.text import printable

    print(f"llmcheck serve: error: {printable(message, newlines=True)}", file=sys.stderr)
    return 2


def run_local(args: argparse.Namespace) -> int:
    """``llmcheck serve --gguf MODEL``: llama.cpp's server for a GGUF model until Ctrl-C."""
    import threading

    from llmcheck.model.local import DEFAULT_CONTEXT, LocalServer, LocalServerError, resolve

    if args.scenario is not None or args.seed is not None:
        return _error("--scenario and --seed apply to the simulator, not to --gguf")
    spec = args.gguf if args.gguf.startswith(("local/", "gguf:")) else f"gguf:{args.gguf}"
    died = threading.Event()
    try:
        model = resolve(spec)
        server = LocalServer(model, context=args.context or DEFAULT_CONTEXT,
                             threads=args.threads, host=args.host, port=args.port)
        server.start()
    except (UsageError, LocalServerError) as exc:
        return _error(str(exc).replace("--llm-model=", "--gguf "))

    def exited(message: str) -> None:
        print(f"llmcheck serve: error: {message}", file=sys.stderr, flush=True)
        died.set()

    server.on_exit = exited

    def banner() -> None:
        print(f"llmcheck local model listening on {server.url}", flush=True)
        print(f"  model:    {model.path} ({model.path.stat().st_size / 1e6:.0f} MB), context "
              f"{server.context} tokens, {server.threads} thread(s)\n"
              f"  pytest:   pytest --llm-model={model.litellm_model} --llm-api-base={server.url}"
              f"\n  litellm:  litellm.completion(model=\"{model.litellm_model}\", "
              f'api_base="{server.url}", api_key="sk-local", messages=[...])\n'
              f"  env:      OPENAI_BASE_URL={server.url} OPENAI_API_KEY=sk-local\n"
              "Press Ctrl-C to stop.", flush=True)

    serve_until_interrupted(server, banner, until=died)
    if died.is_set():
        return 1
    print("llmcheck local model stopped", flush=True)
    return 0


def _usage_lines(server: SimulatorServer) -> str:
    """The banner after the URL line: the scenario and how to point pytest, litellm or
    an OpenAI client at the simulator."""
    from llmcheck.model.client import SIMULATOR_MODEL

    url, scenario = server.url, server.scenario
    return (
        f"  scenario: {scenario.name} ({len(scenario.routes)} routes, seed {scenario.seed})\n"
        f"  pytest:   pytest --llm-model={SIMULATOR_MODEL} --llm-api-base={url}\n"
        f'  litellm:  litellm.completion(model="{SIMULATOR_MODEL}", '
        f'api_base="{url}", api_key="sk-sim", messages=[...])\n'
        f"  env:      OPENAI_BASE_URL={url} OPENAI_API_KEY=sk-sim\n"
        f"  cost:     llmcheck prices the model name {SIMULATOR_MODEL} at $0 "
        '(under another name the cost shows as "?")\n'
        "Press Ctrl-C to stop."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m llmcheck.simulator.cli serve [...]``."""
    parser = argparse.ArgumentParser(prog="llmcheck")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
