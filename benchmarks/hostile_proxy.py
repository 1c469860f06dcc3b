"""Hostile clients against ``llmcheck proxy`` (issue 18, items 4-7), measured.

Runs the proxy as a subprocess (``python -m llmcheck.cli.proxy proxy``, with at most
256 open files, as a small container has) in front of the simulator, and probes it
over loopback: requests without the token, with a foreign Host, from a web page, with
a path outside ``/v1``; 300 connections that send their headers slowly, and what a
normal request gets meanwhile; the proxy's peak RSS for a 50 MB body and four at once;
the traceback lines malformed requests print and the status of deeply nested JSON.

    python benchmarks/hostile_proxy.py                  # this checkout
    python benchmarks/hostile_proxy.py --before /work/basevenv/bin/python
                                                        # a before/after table
    python benchmarks/hostile_proxy.py --smoke          # CI: small and quick
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time

from tabulate import tabulate

from llmcheck.simulator import SimulatorServer

TOKEN = "bench-token-0123456789abcdef"
MALFORMED = [
    "POST /v1/chat/completions HTTP/1.1\r\nHost: {h}\r\nContent-Length: abc",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: {h}\r\nContent-Length: -5",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: {h}\r\nContent-Length: 5\r\nContent-Length: 6",
    "GET /v1/models HTTP/9.9\r\nHost: {h}",
    "GET /v1/models HTTP/1.1\r\nHost: {h}\r\nBad Header: x",
    "GET /v1/models HTTP/1.1\r\nHost: {h}\r\n: empty-name",
    "GET /v1/models HTTP/1.1\r\nHost: {h}\r\nX-Long: " + "a" * 9000,
    "GET /v1/mod\x01els HTTP/1.1\r\nHost: {h}",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked, gzip",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: {h}\r\nTransfer-Encoding: chunked\r\n\r\nzz",
    "GET / HTTP/1.1\r\nHost: {h}\r\nX: \x00",
]


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


class Proxy:
    """``llmcheck proxy`` run by ``python`` in a subprocess, with 256 open files."""

    def __init__(self, python: str, upstream: str) -> None:
        env = {**os.environ, "LLMCHECK_PROXY_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [python, "-W", "ignore", "-m", "llmcheck.cli.proxy", "proxy", "--upstream",
             upstream, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, preexec_fn=_limit_files, cwd="/")
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.port = int(line.rsplit(":", 1)[1].split("/")[0])
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate()
        return err


def request(port: int, head: str, body: bytes = b"", timeout: float = 30.0) -> str:
    """The status of one raw request, or what happened instead."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(head.encode("latin-1") + b"\r\n\r\n")
            sender = threading.Thread(target=_send, args=(sock, body), daemon=True)
            sender.start()
            data = sock.recv(256)
    except TimeoutError:
        return "no answer"
    except OSError as exc:
        return type(exc).__name__
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "closed"


def _send(sock: socket.socket, body: bytes) -> None:
    view = memoryview(body)
    try:
        for i in range(0, len(body), 1 << 20):
            sock.sendall(view[i:i + (1 << 20)])
    except OSError:
        pass


def chat(port: int, *, body: bytes | None = None, path: str = "/v1/chat/completions",
         host: str | None = None, extra: str = "", token: str | None = TOKEN,
         ctype: str = "application/json", timeout: float = 30.0) -> str:
    if body is None:
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                          ).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return request(port, f"POST {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
                   f"{auth}Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                   f"Connection: close{extra}", body, timeout)


def big_body(mb: int) -> bytes:
    return json.dumps({"model": "m", "messages": [
        {"role": "user", "content": "x" * (mb * 1_000_000)}]}).encode()


def probe(python: str, upstream: str, smoke: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    px = Proxy(python, upstream)
    try:
        p = px.port
        out["no token"] = chat(p, token=None)
        out["Host: evil.example (DNS rebinding)"] = chat(p, host=f"evil.example:{p}")
        out["Origin: https://evil.example"] = chat(p, extra="\r\nOrigin: https://evil.example")
        out["text/plain POST (form-free CSRF)"] = chat(p, ctype="text/plain")
        out["/v1/../../admin"] = chat(p, path="/v1/../../admin/chat/completions")
        out["/v1/%2e%2e/%2e%2e/admin"] = chat(p, path="/v1/%2e%2e/%2e%2e/admin/chat/completions")
        out["token, normal request"] = chat(p)
        heads = [h.format(h=f"127.0.0.1:{p}") for h in MALFORMED[: 4 if smoke else None]]
        for head in heads:
            request(p, head)
        deep = (b'{"model":"m","messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
        out["JSON nested 100,000 deep"] = chat(p, body=deep)
    finally:
        err = px.stop()
    out[f"traceback lines, {len(heads)} malformed requests"] = str(
        sum(line.startswith("Traceback") for line in err.splitlines()))
    out["stderr lines for them"] = str(len([line for line in err.splitlines() if line]))

    slow_n = 20 if smoke else 300
    px = Proxy(python, upstream)
    slow = []
    try:
        for _ in range(slow_n):
            try:
                s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
                slow.append(s)
            except OSError:
                break
        time.sleep(1.0)
        started = time.perf_counter()
        outcome = chat(px.port, timeout=5 if smoke else 10)
        took = time.perf_counter() - started
        out[f"{slow_n} slow-header connections: a normal request"] = f"{outcome} ({took:.1f} s)"
        if not smoke:
            time.sleep(35)  # past the proxy's 30 s header time
            held = 0
            for s in slow:
                s.setblocking(False)
                try:
                    s.recv(1)  # b"" (closed by the proxy) or an answer: not held
                except BlockingIOError:
                    held += 1  # still open, silent
                except OSError:
                    pass
            out["of them still held after 36 s"] = str(held)
    finally:
        for s in slow:
            s.close()
        px.stop()

    size = 5 if smoke else 50
    for n in (1, 4):
        px = Proxy(python, upstream)
        try:
            body = big_body(size)
            results: list[str] = []

            def send(port: int = px.port, body: bytes = body, out: list[str] = results
                     ) -> None:
                out.append(chat(port, body=body, timeout=120))

            threads = [threading.Thread(target=send) for _ in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            time.sleep(0.5)
            label = f"{n} x {size} MB body" if n > 1 else f"{size} MB body"
            out[f"{label}: status, proxy peak RSS"] = (
                f"{','.join(sorted(set(results)))}, {px.peak_rss_mb():.0f} MB")
        finally:
            px.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small and quick (CI)")
    parser.add_argument("--before", metavar="PYTHON",
                        help="also probe the proxy of another install (e.g. the code "
                             "before the issue) and print both columns")
    args = parser.parse_args(argv)
    with SimulatorServer({"name": "hostile", "latency": {"ms": 0},
                          "default": {"answers": [{"text": "fine"}]}}) as sim:
        after = probe(sys.executable, sim.url, args.smoke)
        before = probe(args.before, sim.url, args.smoke) if args.before else None
    rows = [[name, before.get(name, "-") if before else None, value]
            for name, value in after.items()]
    headers = ["probe", "before", "after"] if before else ["probe", "result"]
    if not before:
        rows = [[r[0], r[2]] for r in rows]
    print(tabulate(rows, headers=headers))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
