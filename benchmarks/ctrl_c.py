"""Ctrl-C at a random moment: does every session stop, say so and exit 2?

    python benchmarks/ctrl_c.py [--sessions 40] [--window 6] [--model local/smollm2]
    python benchmarks/ctrl_c.py --smoke

Each session is a real ``pytest`` process running three LLM tests (concurrency 1, 4
in threads and 4 on the event loop; 120 samples each, calls through litellm to the
built-in simulator, or to ``--model``); SIGINT arrives after a delay drawn uniformly
from [0, window] s after pytest has collected the tests (so while the model or
simulator starts, during sampling, or between tests; sessions run one test in turn,
or all three; earlier, pytest is still
importing its plugins, and a Ctrl-C there ends it by SIGINT, as it does any Python
program). A session is
clean when pytest exits 2 (interrupted) within 30 s of the signal, prints no
"Exception ignored" (a KeyboardInterrupt Python dropped, so the run went on) and no
TypeError or INTERNALERROR (pytest failing to render the interrupt), and, once
sampling had begun, its JSON report says interrupted. With a local model, no llama.cpp
server may outlive the session.

Measured before the fix, against SmolLM2 at concurrency 1: 1 session in 25 ran to its
last sample and exited 0 (the KeyboardInterrupt landed in a finalizer), and one CI run
exited 1 (a traceback entry without a line number broke pytest's rendering of it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

SUITE = """
import llmcheck

@llmcheck.repeat(runs=120, min_pass_rate=0.5, verdict="threshold", early_stop=False,
                 concurrency=1)
def test_inline(llm):
    llm("Say hi.", max_tokens=4)

@llmcheck.repeat(runs=120, min_pass_rate=0.5, verdict="threshold", early_stop=False,
                 concurrency=4)
def test_threads(llm):
    llm("Say hi.", max_tokens=4)

@llmcheck.repeat(runs=120, min_pass_rate=0.5, verdict="threshold", early_stop=False,
                 concurrency=4)
async def test_async(llm):
    await llm.acall("Say hi.", max_tokens=4)
"""


def llama_servers(marker: str) -> list[int]:
    """Pids of live llama.cpp servers whose command line names ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"llama_cpp.server" in cmdline and marker.encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


SELECTIONS = ("test_inline", "test_threads", "test_async", "all")
"""Session i runs one of these in turn (all: the three in a row, so Ctrl-C may also
land between tests)."""


def one_session(folder: Path, delay: float, model: str | None,
                selection: str = "all") -> dict[str, object]:
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    if selection != "all":
        args += ["-k", selection]
    marker = str(folder)
    if model and model.startswith("local/"):
        from llmcheck.model import local

        link = folder / "model.gguf"  # a path of its own: this session's server is told apart
        link.symlink_to(local.resolve(model).path)
        args.append(f"--llm-model=gguf:{link}")
    elif model:
        args.append(f"--llm-model={model}")
    proc = subprocess.Popen(args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[bytes] = []
    collected = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith(b"collected "):
                collected.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not collected.wait(120):
        proc.kill()
        raise RuntimeError("pytest did not collect within 120 s:\n" + b"".join(lines).decode())
    time.sleep(delay)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
        took = time.monotonic() - signalled
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        took = float("inf")
    reader.join(10)
    text = b"".join(lines).decode(errors="replace")
    report = folder / "reports" / "llmcheck.json"
    began = report.exists()
    data = json.loads(report.read_text()) if began else {}
    interrupted = data.get("interrupted") is True
    cut = [t["nodeid"].split("::")[-1] for t in data.get("tests", []) if t.get("interrupted")]
    time.sleep(0.5)  # the server's SIGTERM, then SIGKILL, is the plugin's to send
    left = llama_servers(marker)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    problems = [name for name, bad in (
        (f"exit {proc.returncode}", proc.returncode != 2),
        ("slow exit", took > 30),
        ("Exception ignored", "Exception ignored" in text),
        ("TypeError/INTERNALERROR", "TypeError" in text or "INTERNALERROR" in text),
        ("report not interrupted", began and not interrupted),
        ("server left", bool(left)),
    ) if bad]
    return {"delay": delay, "rc": proc.returncode, "took": took, "problems": problems,
            "began": began, "cut": cut[0] if cut else "-", "output": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--window", type=float, default=6.0,
                        help="SIGINT after U(0, window) seconds (default 6: about as long "
                        "as one test takes against the simulator)")
    parser.add_argument("--model", default=None,
                        help="e.g. local/smollm2 (default: the built-in simulator)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None,
                        help="write the output of every session that was not clean here")
    parser.add_argument("--smoke", action="store_true", help="two sessions: that it runs")
    opts = parser.parse_args()
    if opts.smoke:
        opts.sessions, opts.window = 2, 3.0
    rng = random.Random(opts.seed)
    results = []
    for i in range(opts.sessions):
        with tempfile.TemporaryDirectory(prefix="llmcheck-ctrl-c-") as tmp:
            folder = Path(tmp)
            (folder / "test_ctrl_c.py").write_text(SUITE)
            result = one_session(folder, rng.uniform(0, opts.window), opts.model,
                                 SELECTIONS[i % len(SELECTIONS)])
        results.append(result)
        if result["problems"] and opts.keep is not None:
            opts.keep.mkdir(parents=True, exist_ok=True)
            (opts.keep / f"session-{i}.txt").write_text(str(result["output"]))
        print(f"{i:3d}  SIGINT at {result['delay']:5.2f} s  in {result['cut']:<12}  "
              f"exit {result['rc']}  "
              f"{result['took']:.2f} s  {', '.join(result['problems']) or 'clean'}",
              flush=True)
    clean = sum(not r["problems"] for r in results)
    problems = Counter(p for r in results for p in r["problems"])
    took = [r["took"] for r in results if r["took"] != float("inf")]
    where = Counter(str(r["cut"]) for r in results)
    print(f"\n{clean}/{len(results)} sessions clean "
          f"({sum(bool(r['began']) for r in results)} interrupted while sampling); "
          f"exit after SIGINT: median {statistics.median(took):.2f} s, max {max(took):.2f} s")
    print("  interrupted in: " + ", ".join(f"{k} {v}" for k, v in sorted(where.items())))
    for problem, count in problems.most_common():
        print(f"  {problem}: {count}")
    if not opts.smoke and clean < len(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
