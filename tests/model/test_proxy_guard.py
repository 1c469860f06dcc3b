"""Hostile clients against both proxies (``llmcheck proxy`` and the session's
``llm_endpoint`` proxy), over real sockets on loopback: who may spend the upstream's
key (token, Host, browsers), where a request may go (paths), and what a client can
hold or make the proxy read (slow headers, connections, large bodies, malformed
HTTP, deep JSON). The upstream is tests/fault_server.py, which counts what reaches it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from fault_server import FaultServer

from llmcheck.model.client import ModelConfig
from llmcheck.model.endpoint import Endpoint
from llmcheck.model.proxy import FaultProxy

TOKEN = "tok-0123456789abcdef"
TOKEN_ENV = "LLMCHECK_PROXY_TOKEN"  # the documented variable
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def upstream():
    with FaultServer() as server:
        yield server


def exchange(port: int, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, CRLF added) and ``body`` as bytes on a
    new connection, read until the proxy closes it; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n\r\n" + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if _complete(data):
                break
    return _parse(data)


def _complete(data: bytes) -> bool:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value)
    return False


def _parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, rest


def post(port: int, path: str = "/v1/chat/completions", *, host: str | None = None,
         extra: str = "", ctype: str = "application/json",
         token: str | None = TOKEN) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(CHAT).encode()
    auth = f"Authorization: Bearer {token}\n" if token else ""
    return exchange(port, f"POST {path} HTTP/1.1\nHost: {host or f'127.0.0.1:{port}'}\n"
                    f"{auth}Content-Type: {ctype}\nContent-Length: {len(body)}\n"
                    f"Connection: close{extra}", body)


def error_code(body: bytes) -> str:
    return json.loads(body)["error"]["code"]


# -------------------------------------------------------------- item 4: clients


def _start_cli(upstream_url: str, *args: str, env: dict[str, str] | None = None
               ) -> tuple[subprocess.Popen[str], str, str]:
    """``llmcheck proxy`` in a subprocess: (process, base URL, its banner)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmcheck.cli.proxy", "proxy", "--upstream", upstream_url,
         "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    banner = "".join(proc.stdout.readline() for _ in range(6))
    url = banner.splitlines()[0].rsplit(" ", 1)[-1]
    return proc, url, banner


def _stop_cli(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate()
    return err


def test_standalone_proxy_serves_only_clients_with_its_token(upstream):
    proc, url, banner = _start_cli(upstream.url)
    try:
        token = banner.split("token:", 1)[1].split()[0]
        assert len(token) >= 32 and f"OPENAI_API_KEY={token}" in banner
        with pytest.raises(openai.AuthenticationError) as refused:
            openai.OpenAI(base_url=url, api_key="sk-anything", max_retries=0
                          ).chat.completions.create(**CHAT)
        assert "token" in refused.value.message
        with httpx.Client() as http:
            assert http.post(url + "/chat/completions", json=CHAT).status_code == 401
            assert upstream.request_count == 0, "nothing without the token reaches upstream"
            # the token the way SDKs send keys: OpenAI, Azure, Anthropic-style
            for header in ({"Authorization": f"Bearer {token}"}, {"api-key": token},
                           {"x-api-key": token}):
                assert http.post(url + "/chat/completions", json=CHAT,
                                 headers=header).status_code == 200
        reply = openai.OpenAI(base_url=url, api_key=token, max_retries=0
                              ).chat.completions.create(**CHAT)
        assert reply.choices[0].message.content == "fine"
    finally:
        _stop_cli(proc)
    assert upstream.request_count == 4


def test_the_token_can_come_from_the_environment_and_a_short_one_is_refused(upstream):
    proc, url, banner = _start_cli(upstream.url, env={TOKEN_ENV: TOKEN})
    try:
        assert TOKEN in banner and TOKEN not in " ".join(proc.args)  # not in ps
        with httpx.Client() as http:
            ok = http.post(url + "/chat/completions", json=CHAT,
                           headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
    finally:
        _stop_cli(proc)
    short = subprocess.run([sys.executable, "-m", "llmcheck.cli.proxy", "proxy", "--upstream",
                            upstream.url, "--port", "0", "--token", "abc"],
                           capture_output=True, text=True)
    assert short.returncode == 2 and "--token" in short.stderr and "16" in short.stderr


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.nip.io:{port}",
                                  "127.0.0.1:{other}", "localhost.attacker.test:{port}"])
@pytest.mark.parametrize("token", [TOKEN, None], ids=["token", "open"])
def test_a_host_that_is_not_the_proxy_is_refused(upstream, host, token):
    """DNS rebinding: a page whose name now resolves to 127.0.0.1 sends its own name."""
    with FaultProxy(upstream.url, accept_key=token) as px:
        status, _, body = post(px.port, host=host.format(port=px.port, other=px.port + 1),
                               token=token)
        assert status == 403 and error_code(body) == "host_refused"
        assert b"is not this proxy" in body
        for own in (f"127.0.0.1:{px.port}", f"localhost:{px.port}"):
            assert post(px.port, host=own, token=token)[0] == 200
    assert upstream.request_count == 2


@pytest.mark.parametrize("extra,ctype", [
    ("\nOrigin: https://evil.example", "application/json"),
    ("\nOrigin: null", "application/json"),
    ("\nSec-Fetch-Site: cross-site", "application/json"),
    ("\nSec-Fetch-Site: same-site", "application/json"),
    ("", "text/plain;charset=UTF-8"),
    ("", "application/x-www-form-urlencoded"),
], ids=["origin", "origin-null", "cross-site", "same-site", "text-plain", "form"])
def test_browser_requests_are_refused_on_both_proxies(upstream, extra, ctype):
    endpoint = Endpoint(ModelConfig(model="openai/m", api_base=upstream.url))
    try:
        session_proxy = endpoint.proxy
        with FaultProxy(upstream.url, accept_key=TOKEN) as standalone:
            for port, key in ((standalone.port, TOKEN), (session_proxy.port, endpoint.api_key)):
                status, _, body = post(port, extra=extra, ctype=ctype, token=key)
                assert status == 403 and error_code(body) == "browser_request_refused"
                assert post(port, token=key)[0] == 200
    finally:
        endpoint.stop()
    assert upstream.request_count == 2


def test_the_session_proxy_takes_its_key_the_way_sdks_send_it(upstream):
    endpoint = Endpoint(ModelConfig(model="openai/m", api_base=upstream.url))
    try:
        with httpx.Client() as http:
            for header in ({"x-api-key": endpoint.api_key}, {"api-key": endpoint.api_key}):
                r = http.post(endpoint.base_url + "/chat/completions", json=CHAT,
                              headers=header)
                assert r.status_code == 200, r.text
            wrong = http.post(endpoint.base_url + "/chat/completions", json=CHAT,
                              headers={"x-api-key": "llmcheck-not-the-key"})
            assert wrong.status_code == 401
    finally:
        endpoint.stop()
    assert upstream.request_count == 2


# ---------------------------------------------------------------- item 5: paths


@pytest.mark.parametrize("path", [
    "/v1/../../admin/chat/completions",
    "/v1/chat/../../../admin/chat/completions",
    "/v1/%2e%2e/%2E%2E/admin/chat/completions",
    "/v1/..%2f..%2fadmin/chat/completions",
    "/v1/%252e%252e/admin/chat/completions",
    "/v1/..\\..\\admin/chat/completions",
    "/v1/..%5c..%5cadmin/chat/completions",
    "/v1//evil.example/chat/completions",
    "/s/abc/v1/../../admin/chat/completions",
    "/v1/./chat/completions",
])
def test_a_path_outside_the_base_is_refused_not_forwarded(upstream, path):
    with FaultProxy(upstream.url, accept_key=TOKEN) as px:
        status, _, body = post(px.port, path)
        assert status == 400 and error_code(body) == "invalid_path", body
        assert post(px.port)[0] == 200
    assert [r["path"] for r in upstream.requests] == ["/v1/chat/completions"]


# ------------------------------------------------------- item 6: slow and large


def test_a_body_over_the_limit_is_a_413_and_never_read_whole(upstream):
    with FaultProxy(upstream.url, accept_key=TOKEN) as px:
        size = px.max_body_bytes + 1
        assert px.max_body_bytes == 32 * 2**20  # the documented default
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{px.port}\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {size}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", px.port)) as sock:
            sock.sendall(head)

            def send_body() -> None:  # the proxy answers and closes before taking it all
                try:
                    for _ in range(size // 2**20 + 1):
                        sock.sendall(b" " * 2**20)
                except OSError:
                    pass

            sender = threading.Thread(target=send_body, daemon=True)
            sender.start()
            data = b""
            while not _complete(data) and (chunk := sock.recv(65536)):
                data += chunk
        status, _, body = _parse(data)
        assert status == 413 and error_code(body) == "request_too_large"
        assert str(size).encode() in body and b"--max-body-mb" in body
        assert post(px.port)[0] == 200
    assert upstream.request_count == 1


def test_a_chunked_body_over_a_configured_limit_is_a_413(upstream):
    with FaultProxy(upstream.url, accept_key=TOKEN, max_body_bytes=1000) as px:
        piece = b"x" * 600
        chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(piece), piece, len(piece), piece)
        status, _, body = exchange(
            px.port, f"POST /v1/embeddings HTTP/1.1\nHost: 127.0.0.1:{px.port}\n"
            f"Authorization: Bearer {TOKEN}\nContent-Type: application/json\n"
            "Transfer-Encoding: chunked\nConnection: close", chunked)
        assert status == 413 and b"1000 bytes" in body
    assert upstream.request_count == 0


def test_slow_headers_are_cut_off_and_extra_connections_get_a_quick_503(upstream):
    with FaultProxy(upstream.url, accept_key=TOKEN, max_connections=4,
                    header_timeout_s=5.0) as px:
        slow = [socket.create_connection(("127.0.0.1", px.port)) for _ in range(4)]
        try:
            for sock in slow:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while px.open_connections < 4:  # accepted in the proxy's own thread
                time.sleep(0.05)
            status, _, body = post(px.port)  # a fifth connection while four are held
            assert status == 503 and error_code(body) == "too_many_connections"
            for sock in slow:  # the proxy closes each once its header time is up
                assert sock.recv(1024) == b""
        finally:
            for sock in slow:
                sock.close()
        assert post(px.port)[0] == 200
    assert upstream.request_count == 1


def test_limits_are_checked_when_the_proxy_is_made(upstream):
    from llmcheck.errors import UsageError

    for bad in ({"max_body_bytes": 0}, {"max_connections": 0},
                {"max_body_bytes": 1.5}, {"header_timeout_s": -1}):
        with pytest.raises(UsageError, match=next(iter(bad))):
            FaultProxy(upstream.url, **bad)


# --------------------------------------------------- item 7: malformed requests

MALFORMED = [
    "POST /v1/chat/completions HTTP/1.1\nHost: {host}\nContent-Length: abc",
    "POST /v1/chat/completions HTTP/1.1\nHost: {host}\nContent-Length: -5",
    "POST /v1/chat/completions HTTP/1.1\nHost: {host}\nContent-Length: 5\nContent-Length: 6",
    "GET /v1/models HTTP/9.9\nHost: {host}",
    "GET /v1/models HTTP/1.1\nHost: {host}\nBad Header: x",
    "GET /v1/models HTTP/1.1\nHost: {host}\n: empty-name",
    "GET /v1/models HTTP/1.1\nHost: {host}\nX-Long: " + "a" * 9000,
    "GET /v1/mod\x01els HTTP/1.1\nHost: {host}",
    "POST /v1/chat/completions HTTP/1.1\nHost: {host}\nTransfer-Encoding: chunked, gzip",
]


def test_malformed_http_is_a_400_and_one_log_line_each(upstream):
    proc, url, _ = _start_cli(upstream.url, env={TOKEN_ENV: TOKEN})
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        for head in MALFORMED:
            status, _, _ = exchange(port, head.format(host=f"127.0.0.1:{port}"))
            assert status == 400, head
        deep = b'{"model":"m","messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        status, _, body = exchange(
            port, f"POST /v1/chat/completions HTTP/1.1\nHost: 127.0.0.1:{port}\n"
            f"Authorization: Bearer {TOKEN}\nContent-Type: application/json\n"
            f"Content-Length: {len(deep)}\nConnection: close", deep)
        assert status == 400 and error_code(body) == "invalid_json"
    finally:
        err = _stop_cli(proc)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= len(MALFORMED) and all(line.startswith("proxy ") for line in lines)
    assert upstream.request_count == 0
