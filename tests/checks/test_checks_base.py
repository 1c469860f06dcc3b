"""Checks record what they measured, raise CheckFailed, and soft() collects failures."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from llmcheck.checks import (
    CheckFailed,
    assert_contains,
    assert_golden,
    assert_json,
    assert_length,
    check,
    soft,
)
from llmcheck.core import context
from llmcheck.core.context import SampleContext
from llmcheck.errors import UsageError
from llmcheck.model.completion import Completion
from llmcheck.records.schema import CheckResult


def test_check_failed_is_an_assertion_error_with_name_and_value():
    with pytest.raises(AssertionError) as info:
        assert_length("one two three", max_words=2)
    err = info.value
    assert isinstance(err, CheckFailed)
    assert err.name == "max_words(2)"
    assert err.value == 3
    assert str(err).startswith("max_words(2): expected at most 2 words, found 3")
    assert err.results[0].passed is False


def test_each_call_records_exactly_one_result(sample):
    assert_length("one two three", max_words=5)
    with pytest.raises(CheckFailed):
        assert_contains("Apollo 11 landed in 1969", ["Apollo 11", "1970"])
    assert_golden("Hello, world", "hello world", "normalized")
    assert [type(r) for r in sample.checks] == [CheckResult] * 3
    first, second, third = sample.checks
    assert (first.name, first.passed, first.message, first.value) == (
        "max_words(5)", True, None, 3)
    assert second.name == "contains_all(['Apollo 11', '1970'])"
    assert second.passed is False and second.value == 1
    assert "missing 1 of 2: ['1970']" in second.message
    assert (third.name, third.passed, third.value) == ("golden.normalized", True, 1.0)


def test_outside_a_sample_checks_just_raise_or_return():
    assert context.current_sample() is None
    assert assert_json('{"a": 1}') == {"a": 1}
    with pytest.raises(CheckFailed):
        assert_json("nope")


def test_usage_errors_are_not_assertion_errors_and_record_nothing(sample):
    with pytest.raises(UsageError) as info:
        assert_length("text", min_words=5, max_words=2)
    assert not isinstance(info.value, AssertionError)
    assert "min_words=5 is greater than max_words=2" in str(info.value)
    assert sample.checks == []


def test_completion_and_str_are_both_accepted(sample):
    reply = Completion(text="Paris is the capital.", model="m")
    assert_contains(reply, "paris")
    assert_contains(reply.text, "paris")
    with pytest.raises(UsageError, match="got int 42"):
        assert_contains(42, "paris")  # type: ignore[arg-type]
    assert [r.passed for r in sample.checks] == [True, True]


def test_messages_escape_and_truncate_huge_output():
    huge = "\x1b[31mred\n" + "x" * 1_000_000
    with pytest.raises(CheckFailed) as info:
        assert_contains(huge, "needle")
    message = str(info.value)
    assert len(message) < 1000
    assert "\\x1b[31mred\\n" in message  # repr-escaped, not a raw escape sequence
    assert "(1,000,009 chars)" in message


# --------------------------------------------------------------------------- soft()


def test_soft_collects_every_failure_and_raises_once(sample):
    with pytest.raises(CheckFailed) as info:
        with soft() as block:
            assert assert_length("a b c", max_words=1) == {"words": 3}  # still measured
            assert_contains("a b c", "a")  # passes
            assert assert_json("not json") is None
            assert len(block.failures) == 2
    err = info.value
    assert str(err).startswith("2 checks failed:")
    assert [r.name for r in err.results] == ["max_words(1)", "json"]
    assert [r.passed for r in sample.checks] == [False, True, False]


def test_soft_without_failures_does_not_raise():
    with soft() as block:
        assert_contains("abc", "b")
    assert block.failures == []


def test_soft_lists_a_plain_assert_last():
    with pytest.raises(CheckFailed) as info:
        with soft():
            assert_contains("abc", "z")
            assert 1 + 1 == 3, "arithmetic"
    text = str(info.value)
    assert text.startswith("2 checks failed:")
    assert "  - assert: arithmetic" in text
    assert isinstance(info.value.__cause__, AssertionError)


def test_soft_lets_other_exceptions_through_unchanged():
    with pytest.raises(KeyError) as info:
        with soft():
            assert_contains("abc", "z")
            raise KeyError("boom")
    if sys.version_info >= (3, 11):
        assert "contains_all(['z'])" in "\n".join(info.value.__notes__)


def test_nested_soft_reports_once_at_the_outer_exit():
    with pytest.raises(CheckFailed) as info:
        with soft():
            assert_contains("abc", "x")
            with soft():
                assert_contains("abc", "y")
            assert_contains("abc", "z")  # still running: the inner block did not raise
    assert [r.name for r in info.value.results] == [
        "contains_all(['x'])", "contains_all(['y'])", "contains_all(['z'])"]


def test_a_soft_block_cannot_be_entered_twice():
    block = soft()
    with block:
        pass
    with pytest.raises(UsageError):
        with block:
            pass


def test_soft_is_per_thread():
    """Concurrent samples in threads each collect their own failures; a thread
    without soft() keeps raising at the first failure."""
    barrier = threading.Barrier(8)

    def worker(i: int) -> list[str] | str:
        ctx = SampleContext(index=i, seed=i)
        token = context._set(ctx)
        try:
            if i == 7:  # no soft(): the other threads' blocks must not swallow this
                barrier.wait()
                try:
                    assert_contains("abc", f"missing-{i}")
                except CheckFailed:
                    return "raised"
                return "swallowed"
            try:
                with soft():
                    barrier.wait()
                    for j in range(i + 1):
                        assert_contains("abc", f"t{i}-{j}")
            except CheckFailed as exc:
                assert len(ctx.checks) == i + 1
                return [r.name for r in exc.results]
            return []
        finally:
            context._reset(token)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    for i in range(7):
        assert results[i] == [f"contains_all(['t{i}-{j}'])" for j in range(i + 1)]
    assert results[7] == "raised"


def test_soft_is_per_task():
    async def one(i: int) -> list[str]:
        try:
            with soft():
                for j in range(3):
                    assert_contains("abc", f"k{i}-{j}")
                    await asyncio.sleep(0)  # interleave with the other tasks
        except CheckFailed as exc:
            return [r.name for r in exc.results]
        return []

    async def main() -> list[list[str]]:
        return await asyncio.gather(*(one(i) for i in range(5)))

    results = asyncio.run(main())
    for i, names in enumerate(results):
        assert names == [f"contains_all(['k{i}-{j}'])" for j in range(3)]


def test_threads_started_with_a_copied_context_report_into_the_block():
    with pytest.raises(CheckFailed) as info:
        with soft():
            threads = []
            for i in range(4):
                ctx = contextvars.copy_context()
                threads.append(threading.Thread(
                    target=ctx.run, args=(assert_contains, "abc", f"w{i}")))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert sorted(r.name for r in info.value.results) == [
        f"contains_all(['w{i}'])" for i in range(4)]


# --------------------------------------------------------------------------- @check


def test_check_bare_records_under_the_function_name(sample):
    @check
    def is_polite(text: str) -> bool:
        return "please" in text.lower()

    assert is_polite("Please sit down") is True
    with pytest.raises(CheckFailed, match="is_polite: is_polite returned False for 'Sit!'"):
        is_polite("Sit!")
    assert [(r.name, r.passed) for r in sample.checks] == [("is_polite", True),
                                                           ("is_polite", False)]


def test_check_with_name_message_value_and_extra_arguments(sample):
    @check(name="few_emoji")
    def emoji(text: str, limit: int) -> tuple[bool, str, int]:
        count = sum(1 for ch in text if ord(ch) > 0x1F000)
        return count <= limit, f"{count} emoji, limit {limit}", count

    emoji("hi \U0001F600\U0001F600", 2)
    with pytest.raises(CheckFailed) as info:
        emoji("\U0001F600" * 3, limit=1)
    assert info.value.name == "few_emoji(limit=1)"
    assert "3 emoji, limit 1" in str(info.value)
    assert [(r.name, r.value) for r in sample.checks] == [("few_emoji(2)", 2),
                                                          ("few_emoji(limit=1)", 3)]


def test_check_predicate_raising_assertion_error():
    @check("short")
    def short(text: str) -> None:
        assert len(text) < 5, f"{len(text)} chars"

    assert short("abc") is True
    with pytest.raises(CheckFailed, match="short: 11 chars"):
        short("hello world")


def test_check_passes_completion_text_unless_annotated(sample):
    seen = []

    @check
    def takes_text(text):
        seen.append(text)
        return True

    @check
    def takes_completion(reply: Completion) -> bool:
        seen.append(reply)
        return not reply.tool_calls

    reply = Completion(text="hi", model="m")
    takes_text(reply)
    takes_completion(reply)
    assert seen == ["hi", reply]


def test_check_in_soft_returns_false():
    @check
    def never(text: str) -> bool:
        return False

    with pytest.raises(CheckFailed):
        with soft():
            assert never("x") is False


def test_check_rejects_bad_predicates_and_returns():
    with pytest.raises(UsageError, match="async"):
        @check
        async def later(text: str) -> bool:
            return True

    @check
    def odd(text: str) -> str:
        return "yes"

    with pytest.raises(UsageError, match="must return a bool"):
        odd("x")


def test_importing_the_checks_loads_no_heavy_or_test_dependency():
    code = ("import sys, llmcheck.checks\n"
            "heavy = [m for m in ('pytest', 'litellm', 'jsonschema', 'rapidfuzz', 'yaml') "
            "if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
