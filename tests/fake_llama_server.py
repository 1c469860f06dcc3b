"""A stand-in for ``python -m llama_cpp.server`` in tests that need no real model: it
takes the same arguments and serves llmcheck's simulator under the model alias.

``FAKE_LLAMA`` picks a misbehaviour: ``crash`` (logs, then exits 1 before serving),
``segv`` (dies of SIGSEGV at startup, as a llama.cpp built for another CPU does),
``silent`` (never answers; the startup timeout must catch it)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time


def killing_suite(runs: int, kill_at: int, body: str) -> str:
    """A test module whose LLM test SIGKILLs the session's local model server before
    sample ``kill_at`` asks the model (``body``: the sample's lines after that)."""
    import textwrap

    lines = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f"""
import os, signal
import llmcheck
from llmcheck_pytest.plugin import SESSION_KEY

@llmcheck.repeat(runs={runs}, min_pass_rate=0.5, early_stop=False, concurrency=1)
def test_answers(llm, llm_sample, request):
    if llm_sample.index == {kill_at}:
        server = request.config.stash[SESSION_KEY].models.local_server
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
{lines}
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--model", "--model_alias", "--host", "--port", "--n_ctx", "--n_threads",
                 "--n_threads_batch"):
        parser.add_argument(flag)
    args = parser.parse_args()
    mode = os.environ.get("FAKE_LLAMA", "")
    print(f"fake llama server: model {args.model} alias {args.model_alias} "
          f"n_ctx {args.n_ctx} n_threads {args.n_threads}", flush=True)
    if mode == "crash":
        print("llama_model_load: error loading model: tensor data is not within bounds",
              flush=True)
        sys.exit(1)
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if mode == "silent":
        time.sleep(3600)
    from llmcheck.simulator import SimulatorServer

    server = SimulatorServer(host=args.host, port=int(args.port)).start()
    print(f"INFO: Uvicorn running on {server.url}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(1)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
