"""``llm_endpoint``: the model under test, for llmcheck's client and for the app's own.

An app that calls the model itself (LangChain, the openai SDK, litellm, curl in a
subprocess) points its client at :attr:`Endpoint.base_url`: llmcheck's proxy on
loopback, started on first use, which forwards to the configured model (or the
simulator) and attributes every call to the sample that made it, counts it
(calls, tokens, cost, latency), seeds it, answers it from the replay cache
when one is on, and injects the sample's faults. Its calls take the same
accounting path as the ``llm`` fixture's (:mod:`llmcheck.model.accounting`): the
session's budget and pacing hold for both, and an injected ``timeout`` is held for
``--llm-timeout`` (or the plan's ``timeout_s``), then answered 504.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from llmcheck.errors import UsageError
from llmcheck.model.accounting import ModelSession, price
from llmcheck.model.client import ModelConfig
from llmcheck.redact import register_secret

OPENAI_BASE = "https://api.openai.com/v1"


class Endpoint:
    """Where the model under test answers (what the ``llm_endpoint`` fixture returns).

    - ``base_url``: an OpenAI-compatible base URL (ending in ``/v1``) for any client;
    - ``model``: the model's name there (no litellm provider prefix);
    - ``api_key``: a throwaway key the proxy accepts (the real key stays inside it);
    - ``litellm_model``: ``openai/<model>``, to call the proxy with litellm;
    - ``config``: the :class:`~llmcheck.model.client.ModelConfig` the ``llm`` fixture uses.
    """

    def __init__(self, config: ModelConfig, *, accounts: ModelSession | None = None) -> None:
        self.config = config
        self._accounts = accounts
        self._proxy: Any = None
        self._lock = threading.Lock()
        self._key = "llmcheck-" + secrets.token_hex(12)
        register_secret(self._key)

    # -- where the model is ---------------------------------------------------
    @property
    def model(self) -> str:
        """The model's name as the OpenAI-compatible upstream knows it."""
        name = self.config.model
        return name.split("/", 1)[1] if name.startswith("openai/") else name

    @property
    def litellm_model(self) -> str:
        return "openai/" + self.model

    @property
    def api_key(self) -> str:
        return self._key

    @property
    def base_url(self) -> str:
        return self.proxy.url

    @property
    def api_base(self) -> str:
        """The same as :attr:`base_url` (litellm's name for it)."""
        return self.base_url

    @property
    def upstream(self) -> str:
        """The OpenAI-compatible URL the proxy forwards to."""
        if self.config.api_base:
            return self.config.api_base.rstrip("/")
        if self.config.model.startswith("openai/") or "/" not in self.config.model:
            return OPENAI_BASE
        provider = self.config.model.split("/", 1)[0]
        raise UsageError(
            f"llm_endpoint.base_url forwards to an OpenAI-compatible API, and the model "
            f"{self.config.model} is reached through litellm's {provider!r} adapter; point "
            "--llm-api-base at an OpenAI-compatible server for it (a litellm proxy, vLLM, "
            "llama.cpp, Ollama), or call litellm yourself with model=llm_endpoint.config.model "
            "(faults are still injected in-process)")

    @property
    def proxy(self) -> Any:
        """The proxy, started on first use (a session that never asks pays nothing)."""
        with self._lock:
            if self._proxy is None:
                import llmcheck.injection.inprocess as inprocess  # via sys.modules
                from llmcheck.model.proxy import FaultProxy

                # the interception names the running sample on every request to the
                # proxy, also for a client built before the sample (an app's chain)
                inprocess.install()
                self._proxy = FaultProxy(
                    self.upstream, upstream_api_key=self.config.api_key(),
                    accept_key=self._key, accounts=self._accounts, cost=self._cost,
                    timeout_s=self.config.timeout, upstream_timeout=self.config.timeout,
                    model_name=self._litellm_name,
                    register=True).start()
            return self._proxy

    def _litellm_name(self, model: str) -> str:
        """Records and replay keys name the model as the ``llm`` client does."""
        return self.config.model if model == self.model else model

    def _cost(self, model: str, prompt_tokens: int | None,
              completion_tokens: int | None) -> float | None:
        return price(self._litellm_name(model), prompt_tokens, completion_tokens,
                     free=self.config.simulated)

    def stop(self) -> None:
        with self._lock:
            if self._proxy is not None:
                self._proxy.stop()
                self._proxy = None

    def __repr__(self) -> str:
        where = " (simulator)" if self.config.simulated else ""
        proxy = f" via {self._proxy.url}" if self._proxy is not None else ""
        return f"<llm_endpoint {self.config.model}{where}{proxy}>"
