"""The redactor masks a secret cut anywhere and encoded any common way, and every place
that shortens text masks before it cuts (so no stub of a secret outlives the cut)."""

from __future__ import annotations

import base64
import json
import random
from urllib.parse import quote, quote_plus

import pytest

from llmcheck import redact
from llmcheck.checks.base import clip, excerpt, excerpt_around, short_repr
from llmcheck.core import outcome
from llmcheck.model import failures, wire

KEY = "sk-proj-Echo/Key+Abc0123456789=defXYZ"
MASK = redact.MASK


@pytest.fixture(autouse=True)
def registered():
    redact.forget_secrets()
    redact.register_secret(KEY)
    yield
    redact.forget_secrets()


def stub(text: str) -> int:
    """The longest piece of KEY left in ``text`` (3 characters or more; else 0)."""
    return max((n for n in range(3, len(KEY) + 1) for i in range(len(KEY) - n + 1)
                if KEY[i:i + n] in text), default=0)


@pytest.mark.parametrize("cut", [12, 20, 36])
def test_a_prefix_a_suffix_or_the_middle_of_the_key_is_masked(cut):
    for piece in (KEY[:cut], KEY[-cut:], KEY[3:3 + cut]):
        assert redact.redact(f"the provider said {piece}... (cut)") == \
            f"the provider said {MASK}... (cut)"


def test_a_piece_shorter_than_twelve_is_left_alone():
    text = f"prefix {KEY[:redact.PIECE - 1]} and sk-proj- alone"
    assert redact.redact(text) == text


def test_pieces_joined_by_an_ellipsis_are_masked_when_they_add_up_to_twelve():
    # pytest's repr of a long string keeps its start and end: 'sk-proj-E...fXYZ'
    assert redact.redact(f"assert '{KEY[:9]}...{KEY[-4:]}' == 'x'") == f"assert '{MASK}' == 'x'"
    assert redact.redact(f"'{KEY[:9]}'...'{KEY[-4:]}'") == f"'{MASK}'"   # excerpt() style
    assert redact.redact(f"{KEY[:5]}\u2026{KEY[-5:]}") == f"{KEY[:5]}\u2026{KEY[-5:]}"  # 10
    assert redact.redact(f"{KEY[-4:]}...{KEY[:9]}") == f"{KEY[-4:]}...{KEY[:9]}"  # wrong order


def test_adjacent_and_repeated_copies_become_one_mask_each_stretch():
    assert redact.redact(f"{KEY}{KEY} and {KEY[5:30]}!") == f"{MASK} and {MASK}!"
    assert redact.redact(f"é\ud800{KEY}日本") == f"é\ud800{MASK}日本"


@pytest.mark.parametrize("prefix", [b"", b"Bearer ", b"user:", b"{\"api_key\": \"", b"ab"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_the_key_inside_any_base64_text_is_masked(prefix, encode):
    encoded = encode(prefix + KEY.encode() + b"\" and more").decode()
    for text in (encoded, encoded.rstrip("="), encoded[:40]):
        masked = redact.redact(f"header: {text}")
        assert MASK in masked and stub(masked) < redact.PIECE, masked


@pytest.mark.parametrize("form", [quote(KEY, safe=""), quote(KEY), quote_plus(KEY),
                                  quote(KEY, safe="").replace("%2F", "%2f"),
                                  KEY.encode().hex(), KEY.encode().hex().upper()])
def test_the_percent_encoded_and_hex_key_is_masked(form):
    assert redact.redact(f"GET /v1?k={form}&x=1") == f"GET /v1?k={MASK}&x=1"


def test_a_value_remembered_from_a_header_is_masked_in_pieces_and_encoded():
    redact.redact("Authorization: Bearer tok_0123456789abcdefghij")
    later = f"{'tok_0123456789abcdefghij'[2:20]} {base64.b64encode(b'tok_0123456789abcdefghij')}"
    assert redact.redact(later).count(MASK) == 2


def test_ordinary_text_is_unchanged():
    rng = random.Random(7)
    words = ["the", "model", "answered", "Paris", "JSON", "{\"name\": \"Ada\"}", "0123",
             "sk-proj-", "Key", "base64", "..."]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(40))
        assert redact.redact(text) == text


def test_the_index_finds_exactly_what_a_window_by_window_search_finds():
    rng = random.Random(3)
    windows = {KEY[i:i + redact.PIECE] for i in range(len(KEY) - redact.PIECE + 1)}
    for _ in range(500):
        parts = []
        for _ in range(rng.randint(1, 4)):
            a = rng.randint(0, len(KEY))
            parts += [KEY[a:rng.randint(a, len(KEY))], rng.choice(["", " ", "x", "q w"])]
        text = "".join(parts)
        covered = [False] * len(text)
        for i in range(len(text) - redact.PIECE + 1):
            if text[i:i + redact.PIECE] in windows:
                covered[i:i + redact.PIECE] = [True] * redact.PIECE
        out, i = [], 0
        while i < len(text):
            j = i
            while j < len(text) and covered[j]:
                j += 1
            out.append(MASK if j > i else text[i])
            i = max(j, i + 1)
        assert redact.redact(text) == "".join(out), text


# -- every cut masks first: the key straddles the cut, a stub would survive a
#    redaction done after it


def test_the_clients_error_excerpt_masks_before_its_300_character_cut():
    text = "#" * 290 + KEY + "#" * 50
    assert stub(failures.short(text)) == 0 and failures.short(text).endswith("...")


def test_the_proxys_upstream_message_masks_before_its_160_character_cut():
    body = json.dumps({"error": {"message": "#" * 150 + KEY}}).encode()
    assert stub(wire._failure_message(500, body)) == 0
    assert stub(wire._failure_message(502, b"#" * 100 + KEY.encode())) == 0  # not JSON


def test_check_excerpts_and_messages_mask_before_they_cut():
    answer = "#" * 100 + KEY + "#" * 100
    for shown in (excerpt(answer, 120), excerpt("#" * 75 + KEY + "#" * 300),
                  excerpt_around(answer, 95, 100, width=10), short_repr(answer, 110),
                  clip("#" * 990 + KEY + "#" * 1000, 1000)):
        assert stub(shown) == 0, shown
    assert excerpt("#" * 75 + KEY + "#" * 300).endswith(f"({75 + len(KEY) + 300:,} chars)")


def test_a_samples_message_masks_before_the_runner_cuts_it():
    assert stub(outcome.clip("#" * 1975 + KEY + "#" * 100, outcome.MAX_MESSAGE)) == 0


def test_values_checks_record_are_masked_before_they_are_cut():
    """A check that keeps a cut of what it matched (a regex match, a label, a schema
    message, a judge's reason) masks the key first, so no stub outlives its cut."""
    from llmcheck import assert_label, assert_matches, assert_not_matches, assert_schema
    from llmcheck.checks.base import CheckFailed
    from llmcheck.core import context

    ctx = context.SampleContext(index=0, seed=0)
    token = context._set(ctx)
    try:
        assert_matches("#" * 70 + KEY, r"#+\S+")                 # the match kept: 80 chars
        with pytest.raises(CheckFailed):
            assert_not_matches("#" * 70 + KEY, r"#+\S+")
        with pytest.raises(CheckFailed):
            assert_label("#" * 50 + KEY, ["yes", "no"])         # the answer kept: 60 chars
        with pytest.raises(CheckFailed):                        # jsonschema's message: 197
            assert_schema('{"a": "' + "#" * 180 + KEY + '"}',
                          {"type": "object", "properties": {"a": {"maxLength": 3}}})
    finally:
        context._reset(token)
    kept = [str(part) for r in ctx.checks for part in (r.value, r.message)]
    assert len(ctx.checks) == 4
    assert all(stub(text) < 8 for text in kept), kept
