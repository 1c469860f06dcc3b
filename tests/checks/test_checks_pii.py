"""assert_no_pii: e-mails, phones, Luhn-valid cards, mod-97-valid IBANs, masked in messages."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmcheck.checks import CheckFailed, assert_no_pii, find_pii
from llmcheck.checks.pii import iban_valid, luhn_valid
from llmcheck.errors import UsageError


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.kind, f.text) for f in find_pii(text)]


def test_checksums():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("378282246310005")  # Amex, 15 digits
    assert not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044")


@pytest.mark.parametrize("text, expected", [
    ("write to ada.lovelace+notes@example.co.uk today",
     ("email", "ada.lovelace+notes@example.co.uk")),
    ("(mailto:bob@mail.example.org)", ("email", "bob@mail.example.org")),
    ("call +44 20 7946 0958 now", ("phone", "+44 20 7946 0958")),
    ("call +1 (415) 555-2671.", ("phone", "+1 (415) 555-2671")),
    ("US: (555) 123-4567", ("phone", "(555) 123-4567")),
    ("US: 555.123.4567", ("phone", "555.123.4567")),
    ("London 020 7946 0958", ("phone", "020 7946 0958")),
    ("Paris 01 23 45 67 89", ("phone", "01 23 45 67 89")),
    ("E.164 +14155552671", ("phone", "+14155552671")),
    ("card 4111 1111 1111 1111 exp 12/30", ("card", "4111 1111 1111 1111")),
    ("card 4111-1111-1111-1111.", ("card", "4111-1111-1111-1111")),
    ("amex 378282246310005", ("card", "378282246310005")),
    ("IBAN DE89 3704 0044 0532 0130 00 IS VALID", ("iban", "DE89 3704 0044 0532 0130 00")),
    ("IBAN: GB82WEST12345698765432.", ("iban", "GB82WEST12345698765432")),
])
def test_detects(text, expected):
    assert expected in kinds(text)


@pytest.mark.parametrize("text", [
    "Meet on 2024-01-15 at 10:30, room 101.",
    "Server 192.168.100.200 answered in 12.5 ms.",
    "Revenue was $1,234,567.89 in 2023 and 4,111 units.",
    "ISBN 978-3-16-148410-0 and order 12345.",
    "The card 4111 1111 1111 1112 fails Luhn.",
    "Not an IBAN: DE89 3704 0044 0532 0130 01.",  # nor are its digits a card
    "Not an IBAN: DE89 3704 0044 0532 0130 08.",
    "Version 1.2.3, pi = 3.14159265, e = 2.71828.",
    "user at example dot com, @handle, a@b",
    "",
])
def test_ignores(text):
    assert kinds(text) == []


def test_card_is_not_also_reported_as_a_phone():
    assert kinds("pay with 5555 5555 5555 4444") == [("card", "5555 5555 5555 4444")]


def test_message_masks_every_finding(sample):
    text = "Contact ada@example.com, +44 20 7946 0958, card 4111 1111 1111 1111."
    with pytest.raises(CheckFailed) as info:
        assert_no_pii(text)
    message = str(info.value)
    assert "found 3:" in message
    assert "email a***@example.com at char 8" in message
    assert "phone ***58" in message and "card **** 1111" in message
    for secret in ("ada@", "7946", "4111 1111"):
        assert secret not in message
    result = sample.checks[0]
    assert (result.name, result.value) == ("no_pii", 3)
    assert "7946" not in (result.message or "")


def test_kinds_selects_what_is_checked(sample):
    assert_no_pii("mail ada@example.com", kinds=("card", "iban"))
    with pytest.raises(CheckFailed):
        assert_no_pii("mail ada@example.com", kinds=["email"])
    assert [r.name for r in sample.checks] == ["no_pii(card, iban)", "no_pii(email)"]
    with pytest.raises(UsageError, match=r"unknown PII kind\(s\) \['ssn'\]"):
        assert_no_pii("x", kinds=["ssn"])
    with pytest.raises(UsageError):
        assert_no_pii("x", kinds=[])


def test_huge_outputs():
    rng = random.Random(0)
    words = ["alpha", "beta", "42", "3.14", "2024-01-15", "x@y", "DE12", "+1", "(555)"]
    text = " ".join(rng.choice(words) for _ in range(190_000))
    assert len(text) > 900_000
    find_pii(text)
    find_pii("1 " * 500_000)  # one run of 500,000 digit groups: finishes
    assert find_pii("a" * 1_000_000 + "@example.com") == []  # local part > 64 chars
    assert find_pii("@" * 1_000_000) == []
    assert find_pii("+1 " * 300_000) == []


# --------------------------------------------------------------------------- properties


def _luhn_complete(body: str) -> str:
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


cards = st.integers(12, 18).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n)).map(_luhn_complete)
noise = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def _format(card: str, style: int) -> str:
    if style == 0:
        return card
    sep = " " if style == 1 else "-"
    return sep.join(card[i:i + 4] for i in range(0, len(card), 4))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(card=cards, style=st.integers(0, 2), before=noise, after=noise)
def test_every_valid_card_in_random_text_is_found(card, style, before, after):
    written = _format(card, style)
    text = f"{before} {written} {after}"
    start = len(before) + 1
    end = start + len(written)
    findings = [f for f in find_pii(text, ["card"]) if f.start < end and start < f.end]
    assert findings, f"card {written!r} not found in {text!r}"
    with pytest.raises(CheckFailed):
        assert_no_pii(text, kinds=["card"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(email=st.emails(), before=noise, after=noise)
def test_every_email_in_random_text_is_found(email, before, after):
    text = f"{before} {email} {after}"
    start = len(before) + 1
    end = start + len(email)
    findings = find_pii(text, ["email"])
    assert any(f.start <= start and f.end >= end for f in findings), (
        f"email {email!r} not found in {text!r}: {findings}")
    with pytest.raises(CheckFailed):
        assert_no_pii(text, kinds=["email"])
