"""A small aiohttp server run from a background thread: the lifecycle shared by the
simulator (:class:`llmcheck.simulator.SimulatorServer`) and the fault proxy
(:class:`llmcheck.model.proxy.FaultProxy`).

:class:`LoopbackServer` binds a socket in the caller's thread (so a bad host or a
busy port is a :class:`~llmcheck.errors.UsageError` at once), then runs its own
event loop with an aiohttp ``AppRunner`` in a daemon thread until :meth:`stop`.
A subclass builds its app in :meth:`_make_app` and may open and close resources
in the loop with :meth:`_on_start` and :meth:`_on_stop`. aiohttp is imported only
when a server starts.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TypeVar

from llmcheck.errors import UsageError

if TYPE_CHECKING:
    from aiohttp import web

_S = TypeVar("_S", bound="LoopbackServer")


class LoopbackServer:
    """Serve :meth:`_make_app` on ``host:port`` from a background thread.

    ``port=0`` picks a free port. On :meth:`stop`, :meth:`_sleep` ends at once;
    anything else still running gets ``shutdown_grace_s`` seconds before it is
    cancelled.
    """

    _kind = "server"
    """What messages and the thread name call this server, e.g. ``simulator``."""

    def __init__(self, host: str, port: int, shutdown_grace_s: float) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._grace = shutdown_grace_s
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup_error: BaseException | None = None
        self._sleepers: set[asyncio.Future[None]] = set()
        self._closing = False

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
        )
        try:
            loop.run_until_complete(self._on_start())
            loop.run_until_complete(runner.setup())
            site = web.SockSite(runner, sock, backlog=1024)
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
    def running(self) -> bool:
        """Whether the server thread is serving."""
        return self._thread is not None and self._thread.is_alive()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


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


__all__ = ["LoopbackServer", "add_listen_arguments"]


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
