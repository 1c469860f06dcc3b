"""No secret in any file or line llmcheck writes (a provider echoing the key, cut and
encoded, is tests/test_secrets_cut.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from llmcheck import redact
from llmcheck.config.settings import looks_like_a_key, validate

PASSWORD = "Pa55word-in-the-url"


SUITE = """
import llmcheck

@llmcheck.repeat(runs=6, concurrency=2, min_pass_rate=0.5)
def test_echo(llm, llm_sample):
    reply = llm("hello")
    assert "hello" in reply.text and llm_sample.index % 2, f"unexpected answer: {reply.text}"
"""


def test_credentials_in_the_api_base_are_not_recorded(pytester, simulator):
    pytester.makepyfile(SUITE.replace("min_pass_rate=0.5", "min_pass_rate=0.0"))
    url = simulator.url.replace("http://", f"http://user:{PASSWORD}@")
    pytester.runpytest("--llm-model=openai/llmcheck-sim", f"--llm-api-base={url}",
                       "--llm-runs=2")
    report = (pytester.path / "reports" / "llmcheck.json").read_text()
    assert PASSWORD not in report
    options = json.loads(report)["options"]
    assert options["api_base"]["value"].startswith("http://[REDACTED]@127.0.0.1:")


def test_urls_lose_their_credentials_and_secret_parameters():
    url = "http://user:PASSWORD123@host/v1?api-key=TOKEN12345678&model=gpt&sig=abcdefgh1"
    assert redact.sanitize_url(url) == \
        "http://[REDACTED]@host/v1?api-key=[REDACTED]&model=gpt&sig=[REDACTED]"
    assert "TOKEN12345678" not in redact.redact("the server said: bad token TOKEN12345678")


@pytest.mark.parametrize("text, expected", [
    ('{"Authorization": "Bearer abcdefghijkl"}', '{"Authorization": "Bearer [REDACTED]"}'),
    ("api-key: qwertyuiopas; later qwertyuiopas", "api-key: [REDACTED]; later [REDACTED]"),
    ("x-api-key=[REDACTED] stays", "x-api-key=[REDACTED] stays"),
    ("no secret here, just https://example.com/a?b=c", "no secret here, just "
     "https://example.com/a?b=c"),
])
def test_header_values_are_masked_and_remembered(text, expected):
    assert redact.redact(text) == expected


@pytest.mark.parametrize("value", ["AIzaSyD3xampleKeyValue123456", "gsk_abc123def456ghi",
                                   "sk_live_51HabcdefABCDEF", "sk-proj-abc", "hf_AbCdEf123456",
                                   "xoxb-1234-abcd", "ghp_0123456789abcdef",
                                   "AbCdEfGhIjKlMnOpQrStUvWx12"])
def test_a_key_given_as_the_variable_name_is_refused_and_not_echoed(value):
    assert looks_like_a_key(value)
    with pytest.raises(Exception) as info:
        validate("api_key_env", value, "--llm-api-key-env")
    assert value not in str(info.value) and "not shown" in str(info.value)


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "GROQ_API_KEY", "HF_TOKEN",
                                  "AZURE_OPENAI_API_KEY_PRODUCTION_EU", "my_key"])
def test_ordinary_variable_names_are_accepted(name):
    assert validate("api_key_env", name, "--llm-api-key-env") == name


def test_every_file_llmcheck_writes_is_private(pytester, model_stack):
    pytester.makepyfile("""
        import os, llmcheck

        @llmcheck.repeat(runs=4, concurrency=1)
        def test_x(llm, llm_sample):
            llm("What is the capital of France?")
            if llm_sample.index == 2 and os.environ.get("DIE"):
                os._exit(9)
    """)
    pytester.runpytest("--llm-cache=write")
    os.environ["DIE"] = "1"
    try:
        pytester.runpytest_subprocess()       # leaves its journal behind
    finally:
        del os.environ["DIE"]
    files = [pytester.path / "reports" / "llmcheck.json",
             pytester.path / ".llmcheck" / "cache.sqlite",
             *(pytester.path / "reports" / ".llmcheck-journal").glob("*.jsonl")]
    assert len(files) == 3
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (pytester.path / "reports" / ".llmcheck-journal",
                   pytester.path / ".llmcheck"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
