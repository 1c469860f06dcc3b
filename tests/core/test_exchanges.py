"""What a failing sample keeps of its model calls (llmcheck.core.exchanges): the last
calls, the first and last messages of a long conversation, every text redacted before it
is cut in the middle, and nothing at all with --llm-keep-io=0."""

from __future__ import annotations

import pytest

from llmcheck import redact
from llmcheck.core.exchanges import KEEP_CALLS, KEEP_MESSAGES, Exchange, cut_middle, keep

SECRET = "sk-proj-ExchangeSecret0123456789abcdefXYZ"


@pytest.fixture
def secret():
    redact.register_secret(SECRET)
    yield SECRET
    redact.forget_secrets()


def test_cut_middle_keeps_the_limit_and_says_how_much_was_cut():
    assert cut_middle("short", 10) == "short"
    text = "a" * 600 + "b" * 600
    out = cut_middle(text, 101)
    assert out == "a" * 51 + "\n[… 1,099 of 1,200 characters cut …]\n" + "b" * 50


def test_a_secret_astride_the_cut_is_redacted_before_it_is_cut(secret):
    """Cut first, the key would lose its middle and its two halves (20 characters each)
    would no longer be recognised; redacted first, none of it is left."""
    text = "x" * 980 + secret + "y" * 980
    [record] = keep([Exchange(0, None, [{"role": "user", "content": text}], text)], 1000)
    for kept in (record.messages[0].content, record.answer):
        assert "characters cut" in kept
        assert not any(secret[i:i + 8] in kept for i in range(len(secret) - 7)), kept


def test_the_last_calls_and_the_ends_of_a_long_conversation_are_kept():
    conversation = [{"role": "system", "content": "be brief"}] + [
        {"role": "user" if i % 2 else "assistant", "content": f"turn {i}"} for i in range(1, 12)]
    # a tool loop: each call sends the conversation so far (the last one all 12 messages)
    exchanges = [Exchange(n, "proxy", conversation[:2 * n + 4], f"answer {n}")
                 for n in range(5)]
    records = keep(list(reversed(exchanges)), 2000)
    assert [r.call for r in records] == list(range(5 - KEEP_CALLS, 5))
    last = records[-1]
    assert last.answer == "answer 4" and last.via == "proxy"
    assert len(last.messages) == KEEP_MESSAGES
    assert last.messages_left_out == 12 - KEEP_MESSAGES
    assert [m.content for m in last.messages] == ["be brief"] + [
        f"turn {i}" for i in range(13 - KEEP_MESSAGES, 12)]
    assert [m.role for m in last.messages][:2] == ["system", "user"]


def test_content_parts_and_tool_calls_are_written_out():
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:..."}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "lookup", "arguments": '{"q": "x"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        "a bare string",
    ]
    [record] = keep([Exchange(0, None, messages, None)], 2000)
    assert [(m.role, m.content) for m in record.messages] == [
        ("user", "what is this?\n[image_url]"),
        ("assistant", '[tool call] lookup({"q": "x"})'),
        ("tool", "42"),
        ("?", "a bare string"),
    ]
    assert record.answer is None


def test_zero_keeps_nothing():
    assert keep([Exchange(0, None, [{"role": "user", "content": "hi"}], "hello")], 0) == []
