"""Installing llmcheck changes nothing in a pytest session that has no LLM test.

- A session of plain tests leaves ``os.environ`` without the variables that keep
  litellm offline, httpx's ``Client.send`` / ``AsyncClient.send`` (and httpx2's) as
  they were, and ``sys.meta_path`` as it was.
- A session that used fault injection and ``llm_endpoint`` (which patch ``send``) puts
  the very original functions back when it ends.
- A session with an LLM test whose module imports litellm at collection (an app under
  test) still imports it offline: the variables are set before the import, and litellm
  never tries the network. The same session without llmcheck does try: that proves the
  probe can see it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys

import pytest

import llmcheck.injection.inprocess as inprocess
from llmcheck.model.offline import OFFLINE_ENV


def _sends() -> dict[str, object]:
    """``send`` of every class the interception may patch, as found on the class."""
    out = {}
    for name in inprocess.MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for cls_name in ("Client", "AsyncClient"):
            out[f"{name}.{cls_name}.send"] = getattr(module, cls_name).send
    return out


@pytest.fixture
def fresh_process(monkeypatch):
    """The state of a process no llmcheck session has touched yet: no offline variables,
    no ``LLMCHECK_*`` settings, httpx not intercepted. Yields ``send`` as it is then."""
    for name in [*OFFLINE_ENV, *(k for k in os.environ if k.startswith("LLMCHECK_"))]:
        monkeypatch.delenv(name, raising=False)
    inprocess.uninstall()  # an earlier test of this process may have left it installed
    sends = _sends()
    assert not any(hasattr(send, "__llmcheck_original__") for send in sends.values())
    return sends


def _assert_same_sends(before: dict[str, object]) -> None:
    after = _sends()
    assert after.keys() == before.keys()
    changed = [name for name in before if after[name] is not before[name]]
    assert not changed, f"not restored after the session: {changed}"


def test_a_session_without_llm_tests_leaves_environment_and_httpx_alone(
        pytester, fresh_process):
    meta_path = list(sys.meta_path)
    pytester.makepyfile(test_plain=f"""
        import os
        import httpx

        def test_sees_no_offline_variables():
            assert [n for n in {list(OFFLINE_ENV)!r} if n in os.environ] == []

        def test_an_http_client_is_plain_httpx():
            assert not hasattr(httpx.Client.send, "__llmcheck_original__")
    """)
    pytester.runpytest().assert_outcomes(passed=2)

    assert [name for name in OFFLINE_ENV if name in os.environ] == []
    _assert_same_sends(fresh_process)
    assert sys.meta_path == meta_path


def test_a_session_that_injected_faults_through_llm_endpoint_restores_httpx(
        pytester, fresh_process, model_stack):
    pytester.makepyfile("""
        import httpx
        import llmcheck
        from llmcheck.injection import inprocess

        @llmcheck.repeat(runs=3, verdict="threshold", min_pass_rate=1.0, early_stop=False)
        @llmcheck.faults(rate_limit=1.0, retry_after=0.01)
        def test_every_request_is_rate_limited(llm_endpoint):
            assert inprocess.installed()
            answer = httpx.post(
                f"{llm_endpoint.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {llm_endpoint.api_key}"},
                json={"model": llm_endpoint.model,
                      "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 429
    """)
    pytester.runpytest().assert_outcomes(passed=1)

    assert not inprocess.installed()
    _assert_same_sends(fresh_process)


# A conftest that records every attempt to reach a host other than loopback (and
# refuses it, so nothing waits on a network this machine may not have), and what the
# environment held when the test module had imported litellm. It does not mention
# llmcheck, so it does not make the session an llmcheck session by itself.
NETWORK_PROBE = """
    import ipaddress
    import json
    import os
    import sys
    from pathlib import Path

    ATTEMPTS = []

    def _loopback(host):
        if isinstance(host, bytes):
            host = host.decode()
        if host in (None, "", "localhost"):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def _probe(event, args):
        host = None
        if event == "socket.getaddrinfo":
            host = args[0]
        elif event == "socket.connect" and isinstance(args[1], tuple):
            host = args[1][0]
        else:
            return
        if not _loopback(host):
            ATTEMPTS.append(str(host))
            raise OSError(f"no network in this test ({host})")

    sys.addaudithook(_probe)

    def pytest_sessionfinish(session):
        Path("probe.json").write_text(json.dumps({
            "attempts": ATTEMPTS,
            "environ_at_end": {k: os.environ.get(k) for k in NAMES},
        }))
""".replace("NAMES", repr(list(OFFLINE_ENV)))

ENV_AT_IMPORT = f"ENV_AT_IMPORT = {{k: os.environ.get(k) for k in {list(OFFLINE_ENV)!r}}}"


def _probe(pytester) -> dict:
    return json.loads((pytester.path / "probe.json").read_text())


def test_an_llm_session_imports_litellm_offline_even_at_collection(
        pytester, fresh_process):
    pytester.makeconftest(NETWORK_PROBE)
    pytester.makepyfile(test_app=f"""
        import os
        import litellm                      # the app under test imports it at collection
        import llmcheck
        {ENV_AT_IMPORT}

        def test_litellm_was_imported_offline():
            assert ENV_AT_IMPORT["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
            assert ENV_AT_IMPORT["LITELLM_OFFLINE_MODE"] == "true"
            assert ENV_AT_IMPORT["HF_HUB_OFFLINE"] == "1"

        @llmcheck.repeat(runs=2, verdict="threshold", min_pass_rate=0.5, early_stop=False)
        def test_the_model(llm):
            assert llm("What is the capital of France?").text
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert _probe(pytester)["attempts"] == []


def test_the_same_session_without_llmcheck_is_left_to_litellms_defaults(
        pytester, fresh_process):
    pytester.makeconftest(NETWORK_PROBE)
    pytester.makepyfile(test_app=f"""
        import os
        import litellm
        {ENV_AT_IMPORT}

        def test_litellm_was_imported_as_without_llmcheck():
            assert set(ENV_AT_IMPORT.values()) == {{None}}
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    probe = _probe(pytester)
    assert set(probe["environ_at_end"].values()) == {None}
    assert probe["attempts"], "litellm, imported online, should have tried the network"
