"""A small aiohttp server run from a background thread: the lifecycle shared by the
simulator (:class:`llmcheck.simulator.SimulatorServer`) and the fault proxy
(:class:`llmcheck.model.proxy.FaultProxy`).

:class:`LoopbackServer` binds a socket in the caller's thread (so a bad host or a
busy port is a :class:`~llmcheck.errors.UsageError` at once), then runs its own
event loop with an aiohttp ``AppRunner`` in a daemon thread until :meth:`stop`.
A subclass builds its app in :meth:`_make_app` and may open and close resources
in the loop with :meth:`_on_start` and :meth:`_on_stop`. aiohttp is imported only
when a server starts.

Hostile or broken clients are bounded here, for every server: a connection that has
not sent a whole request's headers within ``header_timeout_s`` is closed (slow
headers cannot hold it); past ``max_connections`` open connections a new one gets
a 503 at once (default: half the process's open-file limit, at most 512, so
connections cannot use up the files the server needs); a malformed request or a
handler's failure is one log line (``llmcheck.server``), not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from llmcheck.errors import UsageError

if TYPE_CHECKING:
    from aiohttp import web

_S = TypeVar("_S", bound="LoopbackServer")

DEFAULT_HEADER_TIMEOUT_S = 30.0
"""Seconds a connection has to send a request's headers (after connecting, or after
the previous answer on a kept-alive connection) before it is closed."""
_LOG = logging.getLogger("llmcheck.server")
_BUSY_BODY = (b'{"error":{"message":"llmcheck: too many open connections; try again '
              b'shortly.","type":"server_error","param":null,"code":"too_many_connections"}}')
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
         b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
         + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)


class LoopbackServer:
    """Serve :meth:`_make_app` on ``host:port`` from a background thread.

    ``port=0`` picks a free port. On :meth:`stop`, :meth:`_sleep` ends at once;
    anything else still running gets ``shutdown_grace_s`` seconds before it is
    cancelled.
    """

    _kind = "server"
    """What messages and the thread name call this server, e.g. ``simulator``."""

    def __init__(self, host: str, port: int, shutdown_grace_s: float, *,
                 max_connections: int | None = None,
                 header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S) -> None:
        if max_connections is not None and (isinstance(max_connections, bool)
                                            or not isinstance(max_connections, int)
                                            or max_connections < 1):
            raise UsageError(f"max_connections must be a whole number of at least 1, "
                             f"got {max_connections!r}")
        if not isinstance(header_timeout_s, (int, float)) or not header_timeout_s > 0:
            raise UsageError(f"header_timeout_s must be a number of seconds above 0, "
                             f"got {header_timeout_s!r}")
        self.max_connections = max_connections or default_max_connections()
        self.header_timeout_s = float(header_timeout_s)
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._grace = shutdown_grace_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup_error: BaseException | None = None
        self._sleepers: set[asyncio.Future[None]] = set()
        self._closing = False
        self._runner: web.AppRunner | None = None

    # ----------------------------------------------------------------- hooks

    def _make_app(self) -> web.Application:
        raise NotImplementedError

    async def _on_start(self) -> None:
        """Run in the server's loop before it serves (a failure fails :meth:`start`)."""

    async def _on_stop(self) -> None:
        """Run in the server's loop once it has stopped serving (also after a failed
        start, so it must cope with a half-done :meth:`_on_start`)."""

    # ------------------------------------------------------------- lifecycle

    def start(self: _S) -> _S:
        """Bind, start serving in a background thread, and return once listening."""
        if self._thread is not None:
            raise RuntimeError(f"this {type(self).__name__} has already been started")
        sock = self._bind()
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve,
            args=(sock, ready),
            name=f"llmcheck-{self._kind}:{self._port}",
            daemon=True,  # a server the user forgot to stop must not hang interpreter exit
        )
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise RuntimeError(f"{self._kind} failed to start: {self._startup_error}") from (
                self._startup_error
            )
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, let in-flight requests finish (up to the grace period), join.

        Idempotent. ``timeout`` bounds the join (default: grace period + 10 s).
        """
        thread, loop = self._thread, self._loop
        if thread is None or loop is None or not thread.is_alive():
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(self._grace + 10.0 if timeout is None else timeout)
        if thread.is_alive():
            raise RuntimeError(f"{self._kind} thread did not stop in time")

    def __enter__(self: _S) -> _S:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self._requested_port, type=socket.SOCK_STREAM
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise UsageError(f"{self._kind} cannot resolve host {self.host!r}: {exc}") from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise UsageError(
                f"{self._kind} cannot listen on {self.host}:{self._requested_port}: "
                f"{exc.strerror or exc}"
            ) from exc
        return sock

    def _serve(self, sock: socket.socket, ready: threading.Event) -> None:
        """Thread body: run the event loop until :meth:`stop`, then shut down cleanly."""
        from aiohttp import web

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        runner = web.AppRunner(
            self._make_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self._grace,
            handler_cancellation=True,  # a client that hangs up cancels its request
            # aiohttp closes an idle connection (one still sending its headers too)
            # this long after it connected or was last answered
            keepalive_timeout=self.header_timeout_s,
            logger=_OneLineLog(_LOG, {"server": self._kind}),
        )
        self._runner = runner
        try:
            loop.run_until_complete(self._on_start())
            loop.run_until_complete(runner.setup())
            site = _limited_site(runner, sock, self.max_connections)
            loop.run_until_complete(site.start())
        except BaseException as exc:  # reported to start() in the caller's thread
            self._startup_error = exc
            sock.close()
            loop.run_until_complete(runner.cleanup())
            loop.run_until_complete(self._on_stop())
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._wake_sleepers()
            loop.run_until_complete(runner.cleanup())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(self._on_stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _sleep(self, seconds: float) -> None:
        """Sleep without blocking the loop, but wake at once when the server stops,
        so :meth:`stop` never waits for a long simulated delay or held request."""
        if self._closing or seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        handle = loop.call_later(seconds, _resolve, future)
        self._sleepers.add(future)
        try:
            await future
        finally:
            handle.cancel()
            self._sleepers.discard(future)

    def _wake_sleepers(self) -> None:
        self._closing = True
        for future in list(self._sleepers):
            _resolve(future)

    # ------------------------------------------------------------ inspection

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        if self._port is None:
            raise RuntimeError(f"the {self._kind} has not been started")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://host:port`` without the ``/v1`` prefix."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The base URL to give an OpenAI client as ``api_base``, e.g. ``http://127.0.0.1:5000/v1``."""
        return self.root_url + "/v1"

    @property
    def open_connections(self) -> int:
        """Client connections open now (those past ``max_connections`` not counted)."""
        server = self._runner.server if self._runner is not None else None
        return 0 if server is None else len(server.connections)

    @property
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def default_max_connections() -> int:
    """Half the process's soft open-file limit (the rest serves upstream connections,
    files and the cache), between 8 and 512."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 512
    if soft == resource.RLIM_INFINITY:
        return 512
    return max(8, min(512, (soft - 32) // 2))


class _OneLineLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, one line per failure: a malformed request or a
    handler's exception is logged as a warning naming the exception, without the
    traceback aiohttp would print for each."""

    def exception(self, msg: object, *args: object, exc_info: object = True,
                  **kwargs: object) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else (
            sys.exc_info()[1] if exc_info else None)
        text = str(msg) % args if args else str(msg)
        if exc is not None:
            detail = " ".join(str(exc).split())[:200]
            text += f": {type(exc).__name__}" + (f": {detail}" if detail else "")
        self.warning("%s %s", self.extra["server"] if self.extra else "server", text)


class _Busy(asyncio.Protocol):
    """A connection past the limit: a 503 at once, then closed (its file is needed)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


def _limited_site(runner: web.AppRunner, sock: socket.socket, limit: int) -> web.SockSite:
    """aiohttp's SockSite, whose connections past ``limit`` get :class:`_Busy`."""
    from aiohttp import web

    class LimitedSite(web.SockSite):
        async def start(self) -> None:
            await web.BaseSite.start(self)
            server = self._runner.server
            assert server is not None
            # counted from the moment a handler is made: asyncio accepts a whole batch
            # of connections before any of them reaches the server's own list
            live: set[Any] = set()
            lost = server.connection_lost

            def protocol() -> asyncio.Protocol:
                if len(live) >= limit:
                    return _Busy()
                handler = server()
                live.add(handler)
                return handler

            def connection_lost(handler: Any, exc: BaseException | None) -> None:
                live.discard(handler)
                lost(handler, exc)

            server.connection_lost = connection_lost  # type: ignore[method-assign,assignment]

            loop = asyncio.get_running_loop()
            self._server = await loop.create_server(protocol, sock=sock, backlog=1024)

    return LimitedSite(runner, sock, backlog=1024)


# ------------------------------------------------------------------------------ CLI


def add_listen_arguments(parser: argparse.ArgumentParser, *, port: int, port_help: str) -> None:
    """Add ``--host`` (default 127.0.0.1) and ``--port`` (default ``port``) to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=_port, default=port, help=port_help)


def _port(text: str) -> int:
    """A TCP port number, 0 to 65535 (argparse reports the ValueError as a usage error)."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(text)
    return port


_port.__name__ = "port"  # argparse's message: "invalid port value: '99999'"


__all__ = ["DEFAULT_HEADER_TIMEOUT_S", "LoopbackServer", "add_listen_arguments",
           "default_max_connections"]


class Stoppable(Protocol):
    """A started server: a :class:`LoopbackServer`, or a local model's server."""

    def stop(self) -> None: ...


def serve_until_interrupted(server: Stoppable, banner: Callable[[], None], *,
                            until: threading.Event | None = None) -> None:
    """Run a started server until Ctrl-C, SIGTERM or ``until`` is set, then stop it.
    ``banner`` prints what to connect to; SIGTERM is caught before it, since whoever
    reads it may send SIGTERM at once, and Ctrl-C at any point still stops the server
    cleanly."""
    import signal

    done = threading.Event()
    previous = None
    try:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
        banner()
        while not done.wait(0.5):
            if until is not None and until.is_set():
                break
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
