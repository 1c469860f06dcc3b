"""The model side of a session: the simulator, local servers, the endpoint (with its
proxy), the one :class:`~llmcheck.model.accounting.ModelSession` (budget, pacing,
replay cache) that every call takes, and the clients built on them.

Created once per process by :class:`~llmcheck_pytest.session.SessionState`; under
pytest-xdist each worker has its own, with an even share of the session's limits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmcheck.errors import UsageError


class ModelResources:
    """Everything of a session that talks to a model, started on first use."""

    def __init__(self, config: pytest.Config, setting: Callable[[str], Any],
                 cache_path: Path) -> None:
        self.config = config
        self.setting = setting
        self.cache_path = cache_path
        self.simulator: Any = None
        self._endpoint: Any = None
        self._accounts: Any = None
        if self.setting("cache") != "off":
            self.model_session  # noqa: B018 - open the cache now: a bad file is a usage error
        self.scenario = self._load_scenario()
        self.local = self._resolve_local()
        self.local_servers: dict[str, Any] = {}
        self._local_lock = threading.Lock()
        self._local_failures: dict[str, str] = {}

    def _load_scenario(self) -> Any:
        """The simulator's scenario file, read now: a bad one is a usage error before
        any test runs (None: the shipped default, or a configured model needs none)."""
        if self.setting("scenario") is None or self.setting("model"):
            return None
        from llmcheck.simulator.scenario import load_scenario

        try:
            return load_scenario(Path(self.config.invocation_params.dir)
                                 / self.setting("scenario"))
        except UsageError as exc:
            raise pytest.UsageError(f"--llm-scenario: {exc}") from None

    def _resolve_local(self) -> Any:
        """The local GGUF model to serve (``local/NAME``, ``gguf:PATH``), found now: a
        missing file or extra is a usage error before any test runs."""
        from llmcheck.model.local import is_local

        model = self.setting("model")
        if not is_local(model):
            return None
        from llmcheck.model.local import require_server, resolve

        try:
            local = resolve(model)
            require_server(model)
        except UsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        return local

    def local_threads(self) -> int:
        from llmcheck.model.local import default_threads

        workers = int((getattr(self.config, "workerinput", None) or {}).get("workercount", 0)
                      or getattr(self.config.option, "numprocesses", 0) or 1)
        return self.setting("local_threads") or default_threads(workers)

    def local_record(self) -> Any:
        """What the report says of the local model (also in an xdist controller, which
        starts no server: each worker starts its own, with the same settings)."""
        if self.local is None:
            return None
        from llmcheck.model.local import server_version
        from llmcheck.records.schema import LocalModelRecord

        return LocalModelRecord(
            name=self.local.name, path=str(self.local.path), size=self.local.path.stat().st_size,
            context=self.setting("local_context"), threads=self.local_threads(),
            server=server_version())

    @property
    def local_server(self) -> Any:
        """The server of the session's local model, once started (else None)."""
        return None if self.local is None else self.local_servers.get(self.local.name)

    def serve_local(self, model: Any) -> Any:
        """The running server of a :class:`~llmcheck.model.local.LocalModel`, started on first
        use (the session's model, or a test's own ``model="local/..."``)."""
        from llmcheck.model import client
        from llmcheck.model.local import LocalServer, LocalServerError

        with self._local_lock:
            server = self.local_servers.get(model.name)
            if server is not None:
                return server
            failed = self._local_failures.get(model.name)
            if failed is not None:  # said once in full; not started again for every test
                pytest.fail(f"the local model server for {model.name} did not start earlier "
                            f"in this session: {failed.splitlines()[0]}", pytrace=False)
            server = LocalServer(model, context=self.setting("local_context"),
                                 threads=self.local_threads())
            server.on_exit = client.stop_calls  # every later call fails at once, saying why
            try:
                server.start()
            except LocalServerError as exc:
                self._local_failures[model.name] = str(exc)
                pytest.fail(str(exc), pytrace=False)
            client.register_free_model(server.litellm_model)
            self.local_servers[model.name] = server
            return server

    @property
    def accounts(self) -> Any:
        """The session's ModelSession if a call or the cache opened it, else None."""
        return self._accounts

    @property
    def model_session(self) -> Any:
        """Created on first use, so a run without LLM tests never imports the client."""
        if self._accounts is None:
            self._accounts = self._model_session()
        return self._accounts

    def _model_session(self) -> Any:
        """Pacing, budget and cache shared by every client in this process.
        Under xdist, limits are split evenly between the workers."""

        from llmcheck.model.client import (
            Budget,
            ModelSession,
            RateLimiter,
            budget_split,
            calls_split,
        )

        # Only an xdist worker of this session splits the limits (not a process that
        # merely inherited xdist's environment variables).
        workerinput = getattr(self.config, "workerinput", None) or {}
        workers = int(workerinput.get("workercount", 1) or 1)
        cache = None
        if self.setting("cache") != "off":
            from llmcheck.model.cache import ResponseCache

            try:
                cache = ResponseCache(self.cache_path, self.setting("cache"))
            except UsageError as exc:
                raise pytest.UsageError(f"--llm-cache: {exc}") from None
        return ModelSession(
            limiter=RateLimiter(budget_split(self.setting("rpm"), workers)),
            budget=Budget(budget_split(self.setting("max_cost"), workers),
                          calls_split(self.setting("max_calls"), workers)),
            cache=cache,
        )

    def budget_exhausted(self) -> str | None:
        if self._accounts is None:
            return None
        return self.model_session.budget.exhausted

    def endpoint(self) -> Any:
        """The model under test (:class:`llmcheck.model.endpoint.Endpoint`): the configured
        model, or the simulator (started now, once)."""
        from llmcheck.model.client import SIMULATOR_MODEL, ModelConfig
        from llmcheck.model.endpoint import Endpoint

        if self._endpoint is not None:
            return self._endpoint
        params = {k: self.setting(k) for k in ("temperature", "max_tokens")
                  if self.setting(k) is not None}
        common = dict(params=params, timeout=self.setting("timeout"),
                      retries=self.setting("retries"), backoff=self.setting("backoff"),
                      retry_budget=self.setting("retry_budget"))
        if self.local is not None:
            server = self.serve_local(self.local)
            config = ModelConfig(model=server.litellm_model, api_base=server.url,
                                 name=self.local.name, context=server.context, **common)
        elif self.setting("model"):
            config = ModelConfig(model=self.setting("model"), api_base=self.setting("api_base"),
                                 api_key_env=self.setting("api_key_env"), **common)
        else:
            from llmcheck.simulator import SimulatorServer

            self.simulator = SimulatorServer(scenario=self.scenario).start()
            config = ModelConfig(model=SIMULATOR_MODEL, api_base=self.simulator.url,
                                 simulated=True, **common)
        self._endpoint = Endpoint(config, accounts=self.model_session)
        return self._endpoint

    def client(self, endpoint: Any, settings: Any) -> Any:
        """The model client of one test: the session's endpoint with the test's own
        model, temperature and max_tokens (from its marker), if it set them."""
        from dataclasses import replace

        from llmcheck.model.client import LLMClient

        config = endpoint
        params = {} if settings is None else {
            k: getattr(settings, k) for k in ("temperature", "max_tokens")
            if getattr(settings, k) is not None}
        if params:
            config = replace(config, params={**config.params, **params})
        client = LLMClient(config, self.model_session)
        own = None if settings is None else settings.model
        if own and own not in (config.model, config.name):
            from llmcheck.model.local import is_local, resolve

            if is_local(own):  # a test's own local model: served like the session's
                server = self.serve_local(resolve(own))
                return LLMClient(replace(config, model=server.litellm_model, name=own,
                                         context=server.context, api_base=server.url,
                                         api_key_env=None,
                                         simulated=False), self.model_session)
            client = client.with_model(own)
        return client

    def stop(self) -> None:
        """Stop the endpoint's proxy, the simulator and every local server."""
        if self._endpoint is not None:
            self._endpoint.stop()
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        for server in self.local_servers.values():
            server.stop()
        self.local_servers.clear()
        self._endpoint = None

