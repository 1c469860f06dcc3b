"""litellm, imported once and offline, and the models priced at $0 (the simulator,
local servers)."""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

from llmcheck.model.offline import go_offline

SIMULATOR_MODEL = "openai/llmcheck-sim"

_litellm_lock = threading.Lock()
_litellm: Any = None


def import_litellm() -> Any:
    """Import litellm offline: no cost-map download, no tokenizer hub, no debug noise.

    Imported on the first call, in the calling thread. (Importing it in a background
    thread from collection on was measured and does not pay: the import is CPU-bound,
    so under the GIL it only slows collection down; see benchmarks/core.py, row 4.)
    """
    global _litellm
    if _litellm is not None:
        return _litellm
    with _litellm_lock:
        if _litellm is not None:
            return _litellm
        go_offline()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litellm
        litellm.suppress_debug_info = True
        litellm.telemetry = False
        # litellm logs a warning whenever its logging worker meets a new event loop,
        # which every async test (one asyncio.run each) does: not the user's concern.
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)
        _litellm = litellm
    for model in _free_models:
        _register_free(litellm, model)
    return litellm


_free_models: set[str] = {SIMULATOR_MODEL}


def register_free_model(model: str) -> None:
    """Price ``model`` (a litellm name) at $0: the simulator, a local model. Known to
    litellm, it also skips litellm's slow search for an unknown model's capabilities
    on every call."""
    _free_models.add(model)
    if _litellm is not None:
        _register_free(_litellm, model)


def _register_free(litellm: Any, model: str) -> None:
    if model not in litellm.model_cost:
        litellm.register_model({model: {
            "input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
            "litellm_provider": "openai", "mode": "chat", "max_tokens": 8192,
            "max_input_tokens": 128000, "max_output_tokens": 8192,
            "supports_function_calling": True, "supports_tool_choice": True,
        }})



_CANNED = (b'{"id":"warm","object":"chat.completion","created":0,"model":"warm",'
           b'"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},'
           b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
           b'"total_tokens":2}}')


def warm_litellm() -> None:
    """Take litellm's first-call cost now: its first completion imports some 190 more
    modules and builds its OpenAI client (about 1 s here, against 25 ms for the next
    call), which would otherwise land in the first sample's duration and, as one
    outlier, decide a latency requirement on ``total``. One request to a throwaway
    loopback answerer (never the provider: nothing is counted, priced or sent out)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Canned(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(_CANNED)))
            self.end_headers()
            self.wfile.write(_CANNED)

        def log_message(self, *args: Any) -> None:
            pass

    litellm = import_litellm()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            litellm.completion(model=SIMULATOR_MODEL, api_key="sk-warm-up", timeout=10,
                               api_base=f"http://127.0.0.1:{server.server_address[1]}/v1",
                               messages=[{"role": "user", "content": "warm up"}],
                               num_retries=0, max_retries=0)
    except Exception:  # noqa: BLE001 - a warm-up that fails only leaves the cost where it was
        pass
    finally:
        server.shutdown()
        server.server_close()
