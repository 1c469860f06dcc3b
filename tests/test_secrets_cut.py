"""A provider that echoes the key, plain or encoded, leaves no piece of it in anything a
session writes: not where a text was cut before it was shown (pytest's assertion text,
the client's error excerpt, the proxy's upstream message, a check's excerpt), not in
base64, percent-encoding or hex, not in the JUnit XML, not on the terminal."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

from fault_server import FaultServer, key_forms

KEY = "sk-proj-Echo/Key+Abc0123456789=defXYZ"
"""37 characters, with characters that base64 and percent-encoding change."""
PIECE = 12
"""The shortest piece of a secret that must never be written."""


def key_bits(form: str, key: str) -> str:
    """The part of one of :func:`key_forms` that only the key determines: for base64,
    the characters whose six bits all come from the key's bytes (the others mix in the
    bytes around it); the whole form otherwise."""
    for prefix in (b"", b"Bearer ", b"user:"):
        raw = prefix + key.encode()
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(raw).decode()
            if form in (encoded, encoded.rstrip("=")):
                first = -(-len(prefix) * 8 // 6)            # first char after the prefix
                last = len(raw) * 8 // 6                    # chars wholly inside raw
                return encoded[first:last]
    return form


def pieces(text: str, secret: str) -> int:
    """How many times a piece of ``secret`` of :data:`PIECE` characters or more appears
    in ``text`` (each maximal piece once)."""
    windows = {secret[i:i + PIECE] for i in range(len(secret) - PIECE + 1)}
    found, covered_to = 0, -1
    for i in range(len(text) - PIECE + 1):
        if text[i:i + PIECE] in windows:
            if i > covered_to:
                found += 1
            covered_to = i + PIECE
    return found


def leaks(text: str) -> dict[str, int]:
    """Pieces of each form of the key in ``text`` (only forms that appear)."""
    counts = {name: pieces(text, key_bits(form, KEY)) for name, form in key_forms(KEY).items()}
    return {name: n for name, n in counts.items() if n}


def test_the_counter_finds_cut_and_encoded_keys():
    assert leaks(f"a {KEY[:36]}... b ...{KEY[-PIECE:]} c")["plain"] == 2
    assert leaks(f"x {KEY[:PIECE - 1]}... {KEY[5:5 + PIECE - 1]}") == {}
    for name, form in key_forms(KEY).items():
        assert leaks(f"said {form[:-3]}!")[name] == 1, name
    assert leaks(base64.b64encode(b"Authorization: Bearer " + KEY.encode()).decode())


SUITE = """
import os, httpx, llmcheck

@llmcheck.repeat(runs=3, concurrency=1, min_pass_rate=1.0, early_stop=False)
def test_pytest_assertion_text(llm, record_property):
    reply = llm("hello")
    print(reply.text)                                # captured output, shown by pytest
    record_property("answer", reply.text)            # a property the test itself adds
    assert reply.text == "a different answer"

@llmcheck.repeat(runs=3, concurrency=1, min_pass_rate=1.0, early_stop=False)
def test_check_excerpt(llm):
    llmcheck.assert_json(llm("hello").text)

@llmcheck.repeat(runs=3, concurrency=1, min_pass_rate=1.0, early_stop=False)
def test_client_error_excerpt(llm):
    llm("please fail")

@llmcheck.repeat(runs=3, concurrency=1, min_pass_rate=1.0, early_stop=False)
def test_app_through_the_proxy(llm_endpoint):
    answer = httpx.post(f"{llm_endpoint.base_url}/chat/completions",
                        headers={"Authorization": f"Bearer {llm_endpoint.api_key}"},
                        json={"model": llm_endpoint.model,
                              "messages": [{"role": "user", "content": "please fail"}]})
    assert answer.status_code == 200, answer.json()["error"]["message"][-150:]

@llmcheck.repeat(runs=3, concurrency=1)
def test_killed_mid_run(llm):
    llm("hello")
    os._exit(9)                                      # a killed run: only the journal stays
"""


def _files(root: Path) -> dict[str, str]:
    """Every file the session wrote (pytester's copies of the terminal aside)."""
    return {str(p.relative_to(root)): p.read_bytes().decode("utf-8", "replace")
            for p in root.rglob("*")
            if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts
            and p.name not in ("stdout", "stderr")}


def test_a_provider_echoing_the_key_leaves_no_piece_of_it_anywhere(pytester, model_stack,
                                                                    monkeypatch):
    monkeypatch.setenv("ECHO_KEY", KEY)
    pytester.makepyfile(test_echo=SUITE)
    args = ["--llm-model=openai/echo", "--llm-api-key-env=ECHO_KEY", "--llm-retries=1",
            "--llm-backoff=0.01", "-p", "no:randomly"]
    with FaultServer("echo_key") as provider:
        args.append(f"--llm-api-base={provider.url}")
        # a whole session with every writer on, then one killed mid-run (its journal stays)
        result = pytester.runpytest_subprocess(
            *args, "--llm-cache=write", "--junitxml=junit.xml", "-o", "junit_logging=all",
            "-rA", "-k", "not killed")
        files = _files(pytester.path)
        killed = pytester.runpytest_subprocess(*args, "-k", "assertion_text or killed")
        files |= {f"{name} (killed run)": text for name, text in _files(pytester.path).items()
                  if files.get(name) != text}
        assert provider.request_count >= 15
    assert {"junit.xml", "reports/llmcheck.json", "reports/llmcheck.md",
            "reports/llmcheck.html", ".llmcheck/cache.sqlite"} <= set(files)
    journal = [name for name in files if ".llmcheck-journal" in name]
    assert journal and "you sent [REDACTED]" in files[journal[0]]    # the echoes are kept...
    terminal = "".join(r.stdout.str() + r.stderr.str() for r in (result, killed))
    found = {name: leaks(text) for name, text in {**files, "terminal": terminal}.items()}
    leaked = {name: n for name, n in found.items() if n}
    assert not leaked, f"pieces of the key written: {leaked}"        # ...masked, every form

    # JUnit XML, parsed: llmcheck's properties and failure texts, each test's
    cases = {case.get("name"): case for case in ET.parse(pytester.path / "junit.xml")
             .iter("testcase")}
    assert len(cases) == 4
    for name, case in cases.items():
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert properties["verdict"] in ("failed", "error"), name
        failure = case.find("failure")
        assert failure is not None, name
        text = (failure.get("message") or "") + (failure.text or "")
        assert "[REDACTED]" in text, name
        assert not leaks(text) and not leaks(str(properties)), f"{name}: {leaks(text)}"
    captured = cases["test_pytest_assertion_text"]
    assert "you sent [REDACTED]" in captured.find("system-out").text
    assert "you sent [REDACTED]" in {p.get("name"): p.get("value")
                                     for p in captured.iter("property")}["answer"]
