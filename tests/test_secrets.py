"""No secret in any file or line llmcheck writes, whatever the provider echoes."""

from __future__ import annotations

import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmcheck import redact
from llmcheck.config.settings import looks_like_a_key, validate

KEY = "sk-proj-EchoedKey0123456789abcdefXYZ"
PASSWORD = "Pa55word-in-the-url"


class EchoProvider(ThreadingHTTPServer):
    """An OpenAI-compatible provider that echoes every request header and body into
    its answers: a 500 for every third request, a 200 quoting them otherwise."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.requests = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> EchoProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _EchoHandler(BaseHTTPRequestHandler):
    server: EchoProvider

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        echo = "\n".join(f"{k}: {v}" for k, v in self.headers.items()) + "\n" + body
        with self.server.lock:
            self.server.requests += 1
            n = self.server.requests
        if n % 3 == 1:
            self._send(500, {"error": {"message": f"upstream failed for request: {echo}",
                                       "type": "server_error"}})
            return
        self._send(200, {
            "id": f"c{n}", "object": "chat.completion", "created": 0, "model": "echo",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": f"You sent: {echo}"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        })

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


SUITE = """
import os, llmcheck

@llmcheck.repeat(runs=6, concurrency=2, min_pass_rate=0.5)
def test_echo(llm, llm_sample):
    if os.environ.get("DIE_AT") == str(llm_sample.index):
        os._exit(9)                                  # a killed run: only the journal stays
    reply = llm("hello")
    assert "hello" in reply.text and llm_sample.index % 2, f"unexpected answer: {reply.text}"
"""


def _everything_written(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace")
                     for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                     and p.suffix != ".py")


def test_a_provider_echoing_the_key_leaks_it_nowhere(pytester, model_stack, monkeypatch):
    monkeypatch.setenv("ECHO_KEY", KEY)
    pytester.makepyfile(test_echo=SUITE)
    args = ["--llm-model=openai/echo", "--llm-api-key-env=ECHO_KEY", "--llm-retries=2",
            "--llm-backoff=0.01", "-p", "no:randomly"]
    printed = []
    with EchoProvider() as provider:
        base = f"--llm-api-base={provider.url}"
        # 1. a whole session: retries, failures quoting the echo, the cache, the report
        result = pytester.runpytest_subprocess(base, *args, "--llm-cache=write", "-rA")
        printed.append(result.stdout.str() + result.stderr.str())
        # 2. a run killed mid-test (its journal stays), 3. recovered by the next one
        monkeypatch.setenv("DIE_AT", "3")
        result = pytester.runpytest_subprocess(base, *args, "--llm-concurrency=1")
        printed.append(result.stdout.str() + result.stderr.str())
        journal = _everything_written(pytester.path / "reports" / ".llmcheck-journal")
        assert "You sent" in journal
        monkeypatch.delenv("DIE_AT")
        result = pytester.runpytest_subprocess(base, *args, "--llm-cache=read")
        printed.append(result.stdout.str() + result.stderr.str())
        assert provider.requests > 6
    files = _everything_written(pytester.path) + journal
    assert "recovered" in printed[2] and "You sent" in files  # the echoes were kept...
    assert "[REDACTED]" in files                              # ...masked
    pieces = [KEY[i:i + redact.PIECE] for i in range(len(KEY) - redact.PIECE + 1)]
    for where, text in (("files", files), ("journal", journal),
                        ("terminal", "\n".join(printed))):
        found = sum(text.count(piece) for piece in pieces)  # the key, or a cut of it
        assert found == 0, f"pieces of the key appear {found} times in the {where}"


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
