"""The ``llmcheck`` command line.

    llmcheck show reports/llmcheck.json     # the pass-rate table of a saved report
    llmcheck show --wide                    # ... with every column, however wide
    llmcheck report reports/llmcheck.json   # the markdown report (--format html, -o FILE)
    llmcheck serve [--port 8000]            # the built-in OpenAI-compatible simulator
    llmcheck serve --gguf local/smollm2     # a local GGUF model (llmcheck[local])
    llmcheck proxy --upstream URL --faults rate_limit:0.3   # inject faults for any client
    llmcheck plan [--tests 30] [--json]     # what each verdict policy does, exactly
    llmcheck compare BASE HEAD              # did a pass rate drop? (--fail-on-regression)
    llmcheck baseline save|update REPORT    # keep counts to compare with
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from llmcheck.errors import LLMCheckError


def output_width(wide: bool = False) -> int | None:
    """The width to fit tables into, by the rule pytest's summary follows too
    (:func:`llmcheck.reports.table.fit_width`): ``COLUMNS`` when set, else the
    terminal's when stdout is one, else None (every column: a file or a pipe with no
    width set keeps what a cut would lose). ``--wide``: every column, always."""
    from llmcheck.reports.table import fit_width

    if wide:
        return None
    return fit_width(sys.stdout.isatty(), lambda: shutil.get_terminal_size().columns)


def _show(args: argparse.Namespace) -> int:
    from llmcheck.records.schema import load_session
    from llmcheck.reports.cells import printable_record
    from llmcheck.reports.terminal import explain, summary_table
    from llmcheck.text import ellipsize, printable

    # Everything printed below comes from the report: made printable once, here.
    session = printable_record(load_session(args.report))
    width = output_width(args.wide)
    info = f": {len(session.tests)} test(s), seed {session.seed}" + (
        ", interrupted" if session.interrupted else "")
    report = printable(str(args.report))
    if width is not None:
        report = ellipsize(report, max(20, width - len("llmcheck report ") - len(info)))
    print(f"llmcheck report {report}{info}")
    if session.tests:
        print(summary_table(session.tests, width=width))
    for w in session.warnings:
        print(f"warning: {w}")
    if args.failures or args.all:
        for t in session.tests:
            if t.verdict.outcome != "passed" or (args.all and t.failure_groups):
                print()
                print(f"_____ {t.nodeid} _____")
                print(explain(t))
    return 0


def write_output(path: str, text: str) -> None:
    """Write a file the user named (``-o``) through llmcheck's one writer: a regular file
    or a new path only (a symlink followed), owner-only, atomic. Anything that cannot be
    written (a FIFO, a device, a folder, a full disk) is one error line, exit 2."""
    from llmcheck.files import write_atomic, write_error

    try:
        write_atomic(Path(path), text)
    except OSError as exc:
        raise LLMCheckError(f"cannot write {path}: {write_error(exc)}") from None


def _report(args: argparse.Namespace) -> int:
    """``llmcheck report``: the markdown or HTML report of a saved JSON report."""
    from llmcheck.records.schema import load_session

    session = load_session(args.report)
    fmt = args.format or ("html" if args.output and
                          Path(args.output).suffix.lower() in (".html", ".htm") else "md")
    if args.history and fmt != "html":
        raise LLMCheckError("--history draws sparklines in the HTML report: add "
                            "--format html (or -o FILE.html)")
    if fmt == "html":
        from llmcheck.gate.history import report_paths
        from llmcheck.reports.html import render_html

        here = Path(args.report).resolve()
        history = [load_session(p) for p in report_paths(args.history)
                   if p.resolve() != here]
        text = render_html(session, history)
    else:
        from llmcheck.reports.markdown import render_markdown

        text = render_markdown(session)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    write_output(args.output, text)
    print(f"llmcheck report: {fmt} report of {len(session.tests)} test(s) -> {args.output}")
    return 0


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report", help="render a saved JSON report as markdown or HTML",
        description="Render a saved JSON report as GitHub-flavoured markdown (the default) "
                    "or as one self-contained HTML page, the same files a session writes "
                    "beside its JSON (llmcheck.md, llmcheck.html).")
    report.add_argument("report", nargs="?", default="reports/llmcheck.json",
                        help="path to llmcheck.json (default reports/llmcheck.json)")
    report.add_argument("--format", choices=("md", "html"), default=None,
                        help="md (default) or html; with -o FILE.html, html")
    report.add_argument("-o", "--output", metavar="FILE", default=None,
                        help="write the report to FILE (default: print it)")
    report.add_argument("--history", nargs="+", default=[], metavar="DIR_OR_FILE",
                        help="older reports (files or directories of *.json): the HTML "
                             "shows each test's pass rate over them as a sparkline")
    report.set_defaults(func=_report)


def _plan(args: argparse.Namespace) -> int:
    from llmcheck.stats.planning import make_plan, plan_json, plan_options, render_plan

    opts = plan_options(
        min_pass_rate=args.min_pass_rate, margin=args.margin, alpha=args.alpha, beta=args.beta,
        confidence=args.confidence, runs=args.runs, tests=args.tests, policy=args.policy,
        rates=args.rates, session_alpha=args.session_alpha)
    plans = make_plan(opts)
    print(plan_json(plans) if args.json else render_plan(plans))
    return 0


def _add_plan_parser(sub: argparse._SubParsersAction) -> None:
    """``llmcheck plan``: every value is taken as text and validated by
    llmcheck.stats.planning, so a bad one is a one-line usage error."""
    from llmcheck.config.settings import SETTINGS

    defaults = {name: SETTINGS[name].default for name in SETTINGS}
    plan = sub.add_parser(
        "plan", help="how many samples each verdict policy needs, and how often it errs",
        description="Exact operating characteristic of each verdict policy: N, P(pass), "
                    "mean and 95th-percentile samples at several true rates, and the chance "
                    "of a wrong verdict among K tests. Defaults are the run settings' own.")
    for flag, text in [
        ("--min-pass-rate", f"required pass rate m (default {defaults['min_pass_rate']})"),
        ("--margin", "half-width of the indifference zone: figures at m +/- margin "
                     f"(default {defaults['margin']})"),
        ("--alpha", f"sequential: P(pass) at m - margin (default {defaults['alpha']})"),
        ("--beta", f"sequential: P(fail) at m + margin (default {defaults['beta']})"),
        ("--confidence", "confidence level of the interval policy (default "
                         f"{defaults['confidence']})"),
        ("--runs", "N, samples per test (default: as in a run, the smallest fixed test "
                   "that tells m - margin from m + margin at alpha and beta)"),
        ("--session-alpha", "A: hold the chance that a session of K tests at m + margin "
                            "fails any to A, as --llm-session-alpha does (default: off)"),
        ("--tests", "K, the number of LLM tests in a session (default 1)"),
        ("--policy", "threshold, sequential, interval, a comma-separated list, or all "
                     "(default all)"),
        ("--rates", "true rates to tabulate, comma-separated (default m-2*margin .. "
                    "m+2*margin in steps of margin, inside (0, 1))"),
    ]:
        plan.add_argument(flag, metavar=flag[2:].split("-")[-1].upper(), help=text)
    plan.add_argument("--json", action="store_true",
                      help="print the figures as JSON: a list of objects, one per policy")
    plan.set_defaults(func=_plan)


def _merge(args: argparse.Namespace) -> int:
    from llmcheck.gate.merge import merge_reports

    merged = merge_reports(args.reports)
    write_output(args.output, merged.model_dump_json(indent=2) + "\n")
    print(f"llmcheck merge: {len(merged.tests)} test(s) from {len(args.reports)} reports "
          f"-> {args.output}")
    return 0


def _add_merge_parser(sub: argparse._SubParsersAction) -> None:
    merge = sub.add_parser(
        "merge", help="join the reports of shards (--llm-shard=i/n) into one",
        description="Join the JSON reports of shards run on separate machines into one "
                    "report of the whole suite. Refuses reports of different schema "
                    "versions, or with the same test twice, naming them.")
    merge.add_argument("reports", nargs="+", metavar="REPORT", help="shard reports (JSON)")
    merge.add_argument("-o", "--output", required=True, metavar="FILE",
                       help="where to write the merged report")
    merge.set_defaults(func=_merge)


def _history(args: argparse.Namespace) -> int:
    from llmcheck.gate.history import load_history, render_history

    print(render_history(load_history(args.reports, args.alpha), args.format))
    return 0


def _add_history_parser(sub: argparse._SubParsersAction) -> None:
    history = sub.add_parser(
        "history", help="several saved reports side by side, and where a rate moved",
        description="Lay saved reports side by side, one column per run (oldest first), "
                    "and name the tests whose pass rate moved between consecutive runs "
                    "by more than chance (two-sided Fisher exact test, Holm-corrected).")
    history.add_argument("reports", nargs="+", metavar="DIR_OR_FILE",
                         help="reports, or directories of reports (*.json)")
    history.add_argument("--alpha", type=float, default=0.05,
                         help="significance level of a move (default 0.05)")
    history.add_argument("--format", choices=("text", "md"), default="text",
                         help="text (default) or markdown")
    history.set_defaults(func=_history)


def build_parser() -> argparse.ArgumentParser:
    from llmcheck.version import __version__

    parser = argparse.ArgumentParser(
        prog="llmcheck", description="Reliability testing for stochastic LLM outputs.")
    parser.add_argument("--version", action="version", version=f"llmcheck {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    show = sub.add_parser("show", help="print the pass-rate table of a saved JSON report")
    show.add_argument("report", nargs="?", default="reports/llmcheck.json",
                      help="path to llmcheck.json (default reports/llmcheck.json)")
    show.add_argument("--failures", action="store_true",
                      help="also explain every test that did not pass")
    show.add_argument("--all", action="store_true",
                      help="also explain every test that did not pass and every passing "
                           "test with failing samples")
    show.add_argument("--wide", action="store_true",
                      help="print every column of the table, however wide (the default fits "
                           "the table to the terminal; a pipe or a file always gets every "
                           "column)")
    show.set_defaults(func=_show)
    _add_report_parser(sub)
    _add_plan_parser(sub)
    _add_merge_parser(sub)
    _add_history_parser(sub)
    from llmcheck.cli import gate as gate_cli

    gate_cli.add_parsers(sub)
    try:
        from llmcheck.simulator import cli as simulator_cli
    except ImportError:  # pragma: no cover - the simulator ships with the package
        simulator_cli = None
    if simulator_cli is not None:
        simulator_cli.add_parser(sub)
    from llmcheck.cli.proxy import add_proxy_parser

    add_proxy_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe raises here, not in the interpreter's final flush
        return status
    except BrokenPipeError:
        # The reader went away (``llmcheck show | head -3``): stop quietly, like cat, grep
        # or git do. Whatever is still buffered can never be written, so point stdout at
        # devnull: the interpreter's final flush would otherwise raise again and print
        # "Exception ignored ... BrokenPipeError" (the recipe of Python's signal docs).
        # Exit with 141 = 128 + SIGPIPE, the status a shell reports for those tools,
        # which SIGPIPE kills; `set -o pipefail` scripts see the same as with them.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # stdout is no file descriptor (a test's capture)
            pass
        return 141
    except LLMCheckError as exc:
        from llmcheck.text import printable

        # the message may quote the report's path or content
        print(f"llmcheck: error: {printable(str(exc), newlines=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
