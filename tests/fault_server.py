"""A misbehaving OpenAI-compatible provider on loopback, for the client's fault tests.

:class:`FaultServer` listens on 127.0.0.1 on a free port and answers
``POST /v1/chat/completions`` the way its current ``mode`` says (or the next
mode of ``script``), counting every request it receives:

- ``ok``: a normal answer, the server's ``text`` (an SSE stream when the request asks
  for one);
- ``trickle``: the normal JSON answer, ``trickle_bytes`` bytes every
  ``trickle_every`` seconds (each read is quick, the whole body is slow);
- ``trickle_sse``: an SSE stream of 50 small events, one every ``trickle_every`` s;
- ``hang``: read the request, then never answer (until the server stops);
- ``retry_after``: 429 with ``Retry-After: 3600`` (or the server's ``retry_after``);
- ``no_choices``: 200 with ``"choices": []``;
- ``plain_for_stream``: a plain JSON answer, even when a stream was asked for;
- ``not_json``: 200 with an HTML body;
- ``cut``: 200 with a JSON body cut in the middle (a consistent content-length);
- ``cut_connection``: promises the whole body, sends half, closes the connection;
- ``echo_key``: hostile: quotes the request's bearer key in every answer, plain and
  encoded (:func:`key_forms`), three times over so that any cut lands inside one;
  a 500 whose error message does so when the last message asks to ``fail``;
- ``fail_on_ask``: a 500 server error when the last message asks to ``fail``, else the
  normal answer (a provider whose errors land exactly on the samples a test picks);
- ``vary``: a normal answer whose text names the request's number, so no two answers
  are the same, whatever the seed (a provider that does not honour seeds).

Nothing llmcheck wrote answers these requests: the tests run litellm's real HTTP
stack against it. ``stop()`` (or leaving the ``with`` block) releases hung
handlers and closes the socket.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

MODES = ("ok", "trickle", "trickle_sse", "hang", "retry_after", "no_choices",
         "plain_for_stream", "not_json", "cut", "cut_connection", "echo_key", "fail_on_ask",
         "vary")


def key_forms(key: str) -> dict[str, str]:
    """How a hostile provider may quote ``key``: as is, in base64 (standard, URL-safe
    unpadded, after ``Bearer `` and after ``user:``: the three alignments of base64),
    percent-encoded and in hex."""
    raw = key.encode()
    return {"plain": key, "base64": base64.b64encode(raw).decode(),
            "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
            "bearer_base64": base64.b64encode(b"Bearer " + raw).decode(),
            "basic_base64": base64.b64encode(b"user:" + raw).decode(),
            "percent": quote(key, safe=""), "hex": raw.hex()}


def answer(model: str, text: str = "fine", choices: list | None = None) -> dict[str, Any]:
    """An OpenAI chat.completion body."""
    if choices is None:
        choices = [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text}}]
    return {"id": "chatcmpl-fault", "object": "chat.completion", "created": 0, "model": model,
            "choices": choices,
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def sse_events(model: str, text: str = "fine") -> list[bytes]:
    """The SSE events of a streamed answer of ``text``, one word piece per event."""
    def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
        body: dict[str, Any] = {"id": "chatcmpl-fault", "object": "chat.completion.chunk",
                                "created": 0, "model": model,
                                "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}
        if usage is not None:
            body["choices"] = []
            body["usage"] = usage
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    pieces = [text[i:i + 2] for i in range(0, len(text), 2)] or [""]
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": p}) for p in pieces]
    events.append(chunk({}, "stop"))
    events.append(chunk({}, usage={"prompt_tokens": 5, "completion_tokens": 3,
                                   "total_tokens": 8}))
    events.append(b"data: [DONE]\n\n")
    return events


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    body: dict[str, Any]
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("content-length", 0))
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        mode = self.server.next_mode(self.path, body)
        self.body = body
        model = body.get("model", "x")
        stream = bool(body.get("stream"))
        try:
            getattr(self, "_" + mode)(model, stream)
        except (BrokenPipeError, ConnectionResetError):
            self.server.disconnected.set()  # the client gave up: what deadline tests want

    # -- the modes ----------------------------------------------------------
    def _send(self, status: int, data: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _ok(self, model: str, stream: bool) -> None:
        if stream:
            self._sse(sse_events(model, self.server.text), pause=0.0)
        else:
            self._send(200, json.dumps(answer(model, self.server.text)).encode())

    def _sse(self, events: list[bytes], pause: float) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        for event in events:
            if self.server.stopping.wait(pause):
                return
            self.wfile.write(event)
            self.wfile.flush()

    def _trickle(self, model: str, stream: bool) -> None:
        data = json.dumps(answer(model)).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        step = self.server.trickle_bytes
        for i in range(0, len(data), step):
            if self.server.stopping.wait(self.server.trickle_every):
                self.close_connection = True
                return
            self.wfile.write(data[i:i + step])
            self.wfile.flush()

    def _trickle_sse(self, model: str, stream: bool) -> None:
        self._sse(sse_events(model, "a slowly streamed answer, two letters an event, " * 2),
                  self.server.trickle_every)

    def _hang(self, model: str, stream: bool) -> None:
        self.server.stopping.wait()
        self.close_connection = True

    def _retry_after(self, model: str, stream: bool) -> None:
        error = {"error": {"message": "Rate limit reached, try again in an hour",
                           "type": "rate_limit_exceeded"}}
        self._send(429, json.dumps(error).encode(),
                   headers={"retry-after": self.server.retry_after})

    def _no_choices(self, model: str, stream: bool) -> None:
        self._send(200, json.dumps(answer(model, choices=[])).encode())

    def _plain_for_stream(self, model: str, stream: bool) -> None:
        self._send(200, json.dumps(answer(model)).encode())

    def _not_json(self, model: str, stream: bool) -> None:
        self._send(200, b"<html><body>502 upstream hiccup</body></html>", ctype="text/html")

    def _echo_key(self, model: str, stream: bool) -> None:
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        echo = " ".join(f"you sent {form}" for form in key_forms(key).values()) * 3
        messages = self.body.get("messages") or [{}]
        if "fail" in str(messages[-1].get("content", "")):
            error = {"error": {"message": echo, "type": "server_error"}}
            self._send(500, json.dumps(error).encode())
        else:
            self._send(200, json.dumps(answer(model, echo)).encode())

    def _fail_on_ask(self, model: str, stream: bool) -> None:
        messages = self.body.get("messages") or [{}]
        if "fail" in str(messages[-1].get("content", "")):
            error = {"error": {"message": "the provider is overloaded", "type": "server_error"}}
            self._send(500, json.dumps(error).encode())
        else:
            self._ok(model, stream)

    def _vary(self, model: str, stream: bool) -> None:
        text = f"answer number {self.server.request_count}, whatever the seed"
        if stream:
            self._sse(sse_events(model, text), pause=0.0)
        else:
            self._send(200, json.dumps(answer(model, text)).encode())

    def _cut(self, model: str, stream: bool) -> None:
        data = json.dumps(answer(model)).encode()
        self._send(200, data[: len(data) // 2])

    def _cut_connection(self, model: str, stream: bool) -> None:
        data = json.dumps(answer(model)).encode()
        self.close_connection = True
        self._send(200, data[: len(data) // 2], length=len(data))


class FaultServer(ThreadingHTTPServer):
    """The misbehaving provider (see the module docstring); ``url`` is its api_base."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, mode: str = "ok", *, script: list[str] | None = None,
                 trickle_bytes: int = 10, trickle_every: float = 0.5,
                 retry_after: str = "3600", text: str = "fine") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = mode
        self.text = text
        """What ``ok`` answers (JSON-escaped: it may hold lone surrogates, NUL, ...)."""
        self.retry_after = retry_after
        self.script = list(script or [])
        self.trickle_bytes = trickle_bytes
        self.trickle_every = trickle_every
        self.requests: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.disconnected = threading.Event()
        """Set when a handler found the client gone (it closed the connection)."""
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="fault-server",
                                        daemon=True)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_mode(self, path: str, body: dict[str, Any]) -> str:
        with self._lock:
            mode = self.script.pop(0) if self.script else self.mode
            self.requests.append({"path": path, "at": time.monotonic(), "mode": mode,
                                  "stream": bool(body.get("stream"))})
            return mode

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
