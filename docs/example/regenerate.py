"""Regenerate the example reports in this folder from the example suites.

    python docs/example/regenerate.py

Runs ``pytest suites --llm-session-alpha=0.05 --llm-seed=1`` against the built-in
simulator with its reports in a temporary folder, renders that session's JSON as
``llmcheck.md`` and ``llmcheck.html`` here (the clone's own path removed from the
tracebacks), and takes ``report.png``, a screenshot of the HTML in headless Chromium
(``chromium`` on the PATH or /usr/bin/chromium; without it the screenshot is skipped,
saying so).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from llmcheck.records.schema import SessionRecord  # noqa: E402
from llmcheck.reports.html import render_html  # noqa: E402
from llmcheck.reports.markdown import render_markdown  # noqa: E402

PYTEST = [sys.executable, "-m", "pytest", "suites", "--llm-session-alpha=0.05", "--llm-seed=1",
          "-q", "-p", "no:cacheprovider"]


def run_suites(report_dir: Path) -> SessionRecord:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LLMCHECK_") and k != "GITHUB_STEP_SUMMARY"}
    proc = subprocess.run([*PYTEST, f"--llm-report-dir={report_dir}"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"the example suites did not pass:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    text = (report_dir / "llmcheck.json").read_text(encoding="utf-8")
    # the tracebacks name files by absolute path: show them relative to the clone
    text = text.replace(str(ROOT) + os.sep, "")
    return SessionRecord.model_validate_json(text)


def screenshot(html: Path, png: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        print("no chromium: report.png was not regenerated", file=sys.stderr)
        return
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", f"--user-data-dir={profile}",
                        f"--screenshot={png}", "--window-size=1400,1000", html.as_uri()],
                       check=True, capture_output=True, timeout=120)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        session = run_suites(Path(tmp))
    (HERE / "llmcheck.md").write_text(render_markdown(session), encoding="utf-8")
    html = HERE / "llmcheck.html"
    html.write_text(render_html(session), encoding="utf-8")
    screenshot(html, HERE / "report.png")
    for name in ("llmcheck.md", "llmcheck.html", "report.png"):
        path = HERE / name
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
