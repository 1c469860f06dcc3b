"""The markdown and HTML reports written beside a session's JSON report, and the
markdown appended to GitHub's step summary.

At the end of a session the plugin calls :func:`write_views` with the JSON it has
just saved: ``llmcheck.md`` and ``llmcheck.html`` are rendered from that file (never
from live objects) into the same folder, with the same atomic, owner-only writes; and
when ``GITHUB_STEP_SUMMARY`` names a file, the markdown is appended to it, so a GitHub
Actions run shows the report on its summary page. A file that cannot be written is a
warning line, never a failed session: the JSON is the report of record.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llmcheck.records.schema import SessionRecord, load_session

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
STEP_SUMMARY_LIMIT = 1024 * 1024
"""GitHub shows at most 1 MiB of a step's summary: a longer report is appended with its
tables cut to :data:`STEP_SUMMARY_ROWS` rows (failures, errors and inconclusive first)."""
STEP_SUMMARY_ROWS = 100


@dataclass
class Views:
    """What :func:`write_views` wrote, and what it could not."""

    markdown: Path | None = None
    html: Path | None = None
    step_summary: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[tuple[str, bool]]:
        """Lines for the terminal summary: (text, is a warning)."""
        out = []
        if self.markdown is not None:
            out.append((f"llmcheck markdown: {self.markdown}", False))
        if self.html is not None:
            out.append((f"llmcheck html: {self.html}", False))
        if self.step_summary is not None:
            out.append((f"llmcheck: markdown report appended to ${STEP_SUMMARY_ENV} "
                        f"({self.step_summary})", False))
        out += [(f"llmcheck: {w}", True) for w in self.warnings]
        return out


def step_summary_markdown(session: SessionRecord) -> str:
    """The markdown for GitHub's step summary: the whole report, or one with its tables
    cut when the whole one is over GitHub's limit."""
    from llmcheck.reports.markdown import render_markdown

    text = render_markdown(session)
    if len(text.encode("utf-8")) > STEP_SUMMARY_LIMIT:
        text = render_markdown(session, max_rows=STEP_SUMMARY_ROWS)
    return text


def append_step_summary(path: Path, markdown: str) -> None:
    """Append ``markdown`` to ``path`` (created if missing), a blank line before it."""
    from llmcheck.files import open_private

    with open_private(path, "a") as f:
        f.write("\n" + markdown)


def write_views(json_path: Path, environ: Mapping[str, str] | None = None) -> Views:
    """Render the report saved at ``json_path`` as ``llmcheck.md`` and ``llmcheck.html``
    in its folder and, when ``$GITHUB_STEP_SUMMARY`` is set, append the markdown there.
    Never raises: whatever could not be done is in :attr:`Views.warnings`."""
    from llmcheck.files import write_atomic, write_error
    from llmcheck.reports.html import render_html
    from llmcheck.reports.markdown import render_markdown

    environ = os.environ if environ is None else environ
    views = Views()
    try:
        session = load_session(json_path)
    except Exception as exc:  # a report view never fails the session
        views.warnings.append(f"could not render the markdown and HTML reports: {exc}")
        return views
    folder = json_path.parent
    markdown = None
    for name, render in (("llmcheck.md", render_markdown), ("llmcheck.html", render_html)):
        path = folder / name
        try:
            text = render(session)
            write_atomic(path, text)
        except OSError as exc:  # a full disk, a FIFO in its place: the file, not the session
            views.warnings.append(f"could not write {path}: {write_error(exc)}")
            continue
        except Exception as exc:
            views.warnings.append(f"could not render {path}: {exc}")
            continue
        if name.endswith(".md"):
            views.markdown, markdown = path, text
        else:
            views.html = path
    target = environ.get(STEP_SUMMARY_ENV, "").strip()
    if target:
        path = Path(target)
        try:
            if markdown is None or len(markdown.encode("utf-8")) > STEP_SUMMARY_LIMIT:
                markdown = step_summary_markdown(session)
            append_step_summary(path, markdown)
            views.step_summary = path
        except Exception as exc:
            why = write_error(exc) if isinstance(exc, OSError) else exc
            views.warnings.append(f"could not append the report to ${STEP_SUMMARY_ENV} "
                                  f"({path}): {why}")
    return views
