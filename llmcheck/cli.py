"""The ``llmcheck`` command line.

    llmcheck show reports/llmcheck.json     # the pass-rate table of a saved report
    llmcheck serve [--port 8000]            # the built-in OpenAI-compatible simulator
"""

from __future__ import annotations

import argparse
import sys

from llmcheck.errors import LLMCheckError


def _show(args: argparse.Namespace) -> int:
    from llmcheck.records import load_session
    from llmcheck.render import explain, summary_table

    session = load_session(args.report)
    print(f"llmcheck report {args.report}: {len(session.tests)} test(s), seed {session.seed}"
          + (", interrupted" if session.interrupted else ""))
    if session.tests:
        print(summary_table(session.tests))
    for w in session.warnings:
        print(f"warning: {w}")
    if args.failures:
        for t in session.tests:
            if t.verdict.outcome != "passed":
                print()
                print(f"_____ {t.nodeid} _____")
                print(explain(t))
    return 0


def build_parser() -> argparse.ArgumentParser:
    import llmcheck

    parser = argparse.ArgumentParser(
        prog="llmcheck", description="Reliability testing for stochastic LLM outputs.")
    parser.add_argument("--version", action="version", version=f"llmcheck {llmcheck.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print the pass-rate table of a saved JSON report")
    show.add_argument("report", nargs="?", default="reports/llmcheck.json",
                      help="path to llmcheck.json (default reports/llmcheck.json)")
    show.add_argument("--failures", action="store_true",
                      help="also explain every test that did not pass")
    show.set_defaults(func=_show)
    try:
        from llmcheck.simulator import cli as simulator_cli
    except ImportError:  # pragma: no cover - the simulator ships with the package
        simulator_cli = None
    if simulator_cli is not None:
        simulator_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LLMCheckError as exc:
        print(f"llmcheck: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
