"""The view of what a failing sample sent to the model and got back, for the failure
groups of the markdown and HTML reports (:mod:`llmcheck.reports.view` puts it on each
example sample). The record keeps these texts already redacted and cut to
``--llm-keep-io`` (:mod:`llmcheck.core.exchanges`); here they are only made printable,
and each renderer escapes them for its format."""

from __future__ import annotations

from dataclasses import dataclass

from llmcheck.records.schema import SampleRecord
from llmcheck.text import printable

MAX_IO_EXAMPLES = 3
"""Example samples per failure group whose prompt and answer are shown."""


@dataclass
class ExchangeView:
    """What one model call of a failing sample sent and got back."""

    title: str
    """e.g. "call 2 of 3 (through llm_endpoint)"."""
    messages: list[tuple[str, str]]
    """(role, text) of each message kept."""
    left_out: int
    """messages of a long conversation not kept"""
    answer: str
    """the answer's text, or why there was none"""

    @property
    def texts(self) -> list[str]:
        return [self.answer, *(t for _, t in self.messages)]


def exchange_views(s: SampleRecord) -> list[ExchangeView]:
    """The prompts and answers the sample's record kept, as printable text (not cut
    again: the user chose the cut with ``--llm-keep-io``)."""
    views = []
    for x in s.exchanges:
        call = s.calls[x.call] if 0 <= x.call < len(s.calls) else None
        if x.answer is not None:
            answer = x.answer
        else:
            answer = "(no answer" + (f": {call.error})" if call and call.error else ")")
        via = " (through llm_endpoint)" if x.via == "proxy" else ""
        views.append(ExchangeView(
            title=f"call {x.call + 1} of {len(s.calls)}{via}", left_out=x.messages_left_out,
            messages=[(printable(m.role[:40]), printable(m.content, newlines=True))
                      for m in x.messages],
            answer=printable(answer, newlines=True)))
    return views
