"""``llmcheck compare`` and ``llmcheck baseline``: the pre-merge gate on the command line.

    llmcheck baseline save reports/llmcheck.json      # this run becomes the baseline
    llmcheck baseline update reports/llmcheck.json    # ... or is merged into it
    llmcheck compare .llmcheck/baseline.json reports/llmcheck.json --fail-on-regression

Exit status: 0, or 1 for a regression under ``--fail-on-regression``, or 2 for input
that cannot be used (a missing or broken file, a bad option value: one line saying
which), as every llmcheck command (:func:`llmcheck.cli.main.main` maps errors to 2).
"""

from __future__ import annotations

import argparse

from llmcheck.gate.baseline import DEFAULT_BASELINE


def _setting(name: str, value: str | None, flag: str) -> object:
    """An option validated as its ``--llm-*`` twin is (same range, same message)."""
    from llmcheck.config.settings import SETTINGS, validate

    return SETTINGS[name].default if value is None else validate(name, value, flag)


def _compare(args: argparse.Namespace) -> int:
    from llmcheck.gate.baseline import load_counts
    from llmcheck.gate.compare import compare, render
    from llmcheck.text import printable

    margin = _setting("regression_margin", args.margin, "--margin")
    alpha = _setting("regression_alpha", args.alpha, "--alpha")
    test = _setting("regression_test", args.test, "--test")
    correction = _setting("regression_correction", args.correction, "--correction")
    _, base = load_counts(args.base)
    _, head = load_counts(args.head)
    result = compare(base, head, test=test, correction=correction, alpha=alpha,  # type: ignore[arg-type]
                     margin=margin)  # type: ignore[arg-type]
    # node ids and models come from the files: nothing in them reaches the terminal raw
    print(printable(render(result, args.format), newlines=True))
    return 1 if args.fail_on_regression and result.regressions else 0


def _save(args: argparse.Namespace) -> int:
    from llmcheck.gate.baseline import baseline_from_session, save_baseline
    from llmcheck.records.schema import load_session
    from llmcheck.text import printable

    baseline = baseline_from_session(load_session(args.report))
    path = save_baseline(baseline, args.output)
    print(printable(f"llmcheck baseline: {path} holds {len(baseline.tests)} test(s) from "
                    f"{args.report}"))
    return 0


def _update(args: argparse.Namespace) -> int:
    from pathlib import Path

    from llmcheck.config.settings import validate
    from llmcheck.gate.baseline import (
        baseline_from_session,
        load_baseline,
        save_baseline,
        update_baseline,
    )
    from llmcheck.records.schema import load_session
    from llmcheck.text import printable

    max_runs = None if args.max_runs is None else int(
        validate("runs", args.max_runs, "--max-runs"))
    session = load_session(args.report)
    if not Path(args.output).exists():
        baseline = baseline_from_session(session)
        lines = [f"no baseline at {args.output} yet: created from {args.report}"]
    else:
        baseline, lines = update_baseline(load_baseline(args.output), session, max_runs)
    path = save_baseline(baseline, args.output)
    print(printable(f"llmcheck baseline: {path} ({len(baseline.tests)} test(s))"))
    for line in lines:
        print(printable(f"  {line}"))
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` and ``baseline`` to the ``llmcheck`` command."""
    compare = sub.add_parser(
        "compare", help="did any test's pass rate drop? (the pre-merge gate)",
        description="Compare every test of HEAD with the same test of BASE: a one-sided "
                    "exact test that HEAD's pass rate is lower, corrected for the number of "
                    "tests, with an effect-size floor (--margin); per test the smallest drop "
                    "these sample sizes would catch 80% of the time. Exit status 1 on a "
                    "regression with --fail-on-regression, 2 on unusable input.")
    compare.add_argument("base", metavar="BASE",
                         help="the report or baseline file to compare with (e.g. "
                              f"{DEFAULT_BASELINE})")
    compare.add_argument("head", metavar="HEAD", help="the report of the change")
    compare.add_argument("--fail-on-regression", action="store_true",
                         help="exit with status 1 when a test regressed")
    compare.add_argument("--format", choices=("text", "md"), default="text",
                         help="text (default) or md: markdown for a pull-request comment")
    compare.add_argument("--test", metavar="boschloo|fisher",
                         help="exact test: boschloo (default, more powerful) or fisher")
    compare.add_argument("--correction", metavar="holm|bh",
                         help="multiple-test correction: holm (default) or bh "
                              "(Benjamini-Hochberg)")
    compare.add_argument("--margin", metavar="X",
                         help="smallest drop in pass rate that counts as a regression "
                              "(default 0.05)")
    compare.add_argument("--alpha", metavar="A",
                         help="level of the corrected p-values (default 0.05)")
    compare.set_defaults(func=_compare)

    baseline = sub.add_parser(
        "baseline", help="keep a baseline of pass counts to compare changes with",
        description="A baseline holds each test's pass counts accumulated over runs (of "
                    "the same test against the same model), so that a change is compared "
                    "with more samples than one run has.")
    actions = baseline.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, text in [
        ("save", _save, "make a report the baseline (replacing the file)"),
        ("update", _update, "merge a report's counts into the baseline, test by test, when "
                            "model and fingerprint match (else the test starts again)"),
    ]:
        p = actions.add_parser(name, help=text, description=text)
        p.add_argument("report", metavar="REPORT", help="the JSON report of a run")
        p.add_argument("-o", "--output", default=DEFAULT_BASELINE, metavar="BASELINE",
                       help=f"the baseline file (default {DEFAULT_BASELINE})")
        if name == "update":
            p.add_argument("--max-runs", metavar="N",
                           help="keep only each test's latest N runs (default: all)")
        p.set_defaults(func=func)
