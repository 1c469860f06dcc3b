"""What a careless user hits, through the real plugin: a key variable that is not set,
a model litellm cannot place, a base URL that is not a URL, a string where a number
belongs, a misspelt option, ini key or marker keyword. Each is one clear message
before any test runs (pytest's exit code 4 for usage errors), or on the test that
has it, naming the value and what would be accepted."""

from __future__ import annotations

import pytest

UNSET = "LLMCHECK_TEST_KEY_THAT_IS_NOT_SET"

TWO_MODEL_TESTS = """
import llmcheck

@llmcheck.repeat(runs=3)
def test_one(llm):
    assert llm("Say hi").text

@llmcheck.repeat(runs=3)
def test_two(llm):
    assert llm("Say hi").text

def test_plain():
    assert True
"""


@pytest.fixture
def unset_key(monkeypatch):
    monkeypatch.delenv(UNSET, raising=False)
    return UNSET


def usage_error_line(result: pytest.RunResult) -> str:
    """The one ``ERROR: ...`` line of a usage error, checked to be the only one."""
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.errlines
    return errors[0]


def test_an_unset_key_variable_is_one_usage_error_before_any_test(pytester, unset_key):
    pytester.makepyfile(TWO_MODEL_TESTS)
    result = pytester.runpytest("--llm-model=openai/gpt-4o-mini",
                                f"--llm-api-key-env={unset_key}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = usage_error_line(result)
    assert f"--llm-api-key-env={unset_key}" in line
    assert f"export {unset_key}=" in line
    assert "2 test(s)" in line
    result.assert_outcomes()  # nothing ran, not even the plain test
    assert "FAILED" not in result.stdout.str()


def test_a_key_variable_set_in_the_environment_is_named_as_such(pytester, unset_key,
                                                                monkeypatch):
    monkeypatch.setenv("LLMCHECK_API_KEY_ENV", unset_key)
    pytester.makepyfile(TWO_MODEL_TESTS)
    result = pytester.runpytest("--llm-model=openai/gpt-4o-mini")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"LLMCHECK_API_KEY_ENV={unset_key} names the environment variable" in \
        usage_error_line(result)


def test_an_unset_key_variable_stops_an_xdist_session_once(pytester, unset_key):
    pytester.makepyfile(TWO_MODEL_TESTS)
    result = pytester.runpytest_subprocess("-n", "2", "--llm-model=openai/gpt-4o-mini",
                                           f"--llm-api-key-env={unset_key}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"export {unset_key}=" in usage_error_line(result)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(("suite", "args"), [
    # no test talks to a model: the key is never needed
    ("def test_plain():\n    assert True\n", ["--llm-model=openai/gpt-4o-mini"]),
    # the only model test is deselected
    (TWO_MODEL_TESTS, ["--llm-model=openai/gpt-4o-mini", "-k", "plain"]),
    # the model tests are skipped
    (TWO_MODEL_TESTS.replace("@llmcheck.repeat(runs=3)",
                             "@pytest.mark.skip(reason='later')\n@llmcheck.repeat(runs=3)")
     .replace("import llmcheck", "import llmcheck, pytest"),
     ["--llm-model=openai/gpt-4o-mini"]),
    # no model configured: the simulator needs no key
    (TWO_MODEL_TESTS, []),
])
def test_a_session_that_does_not_need_the_key_runs(pytester, unset_key, suite, args):
    pytester.makepyfile(suite)
    result = pytester.runpytest(*args, f"--llm-api-key-env={unset_key}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_a_model_litellm_cannot_place_is_one_usage_error(pytester, monkeypatch):
    monkeypatch.setenv("LLMCHECK_TEST_KEY_THAT_IS_SET", "sk-test-0000")
    pytester.makepyfile(TWO_MODEL_TESTS)
    result = pytester.runpytest("--llm-model=gpt-nonexistent-model",
                                "--llm-api-key-env=LLMCHECK_TEST_KEY_THAT_IS_SET")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = usage_error_line(result)
    assert "--llm-model=gpt-nonexistent-model: litellm cannot tell which provider" in line
    assert "prefix it with the provider, e.g. openai/gpt-4o-mini" in line
    result.assert_outcomes()


@pytest.mark.parametrize("base", ["notaurl", "ftp://example.com/v1", "http:///v1",
                                  "http://127.0.0.1:notaport/v1"])
def test_a_base_url_that_is_not_a_url_is_a_usage_error(pytester, base):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("--llm-model=openai/gpt-4o-mini", f"--llm-api-base={base}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert usage_error_line(result) == (
        f"ERROR: --llm-api-base={base} is invalid: expected an http:// or https:// URL "
        "with a host, e.g. http://127.0.0.1:8080/v1")


# -- 17: wrong types and misspelt names -------------------------------------------------

def test_a_string_for_runs_fails_the_test_naming_it(pytester):
    pytester.makepyfile("""
        import llmcheck, pytest

        @pytest.mark.llm(runs="20")
        def test_marker():
            pass

        @pytest.mark.llm("20")
        def test_positional():
            pass

        @pytest.mark.llm(runss=20)
        def test_misspelt():
            pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=3)  # at setup: the test is broken, not the model
    out = result.stdout.str()
    assert "@pytest.mark.llm(runs='20') is invalid: expected an integer >= 1 and <= " \
        "100000 (got str)" in out
    assert "unknown keyword runss=20 (did you mean runs?)" in out


def test_a_string_for_runs_in_the_decorator_stops_at_collection(pytester):
    pytester.makepyfile("""
        import llmcheck

        @llmcheck.repeat(runs="20")
        def test_x():
            pass
    """)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, as pytest has it
    result.stdout.fnmatch_lines(["*UsageError: @llmcheck.repeat(runs='20') is invalid: "
                                 "expected an integer >= 1 and <= 100000 (got str)*"])


@pytest.mark.parametrize(("option", "hint"), [
    ("--llm-run=20", " (did you mean --llm-runs?)"),
    ("--llm-verdikt=threshold", " (did you mean --llm-verdict?)"),
    ("--llm_max_calls=5", " (did you mean --llm-max-calls?)"),
    ("--llm-whatever", ""),
])
def test_a_misspelt_option_names_the_nearest_one(pytester, option, hint):
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    name = option.split("=")[0]
    assert usage_error_line(result) == (
        f"ERROR: unrecognized option {option}{hint}: llmcheck has no option {name}; "
        "`pytest --help` lists llmcheck's options in its 'llmcheck' section")


def test_an_option_a_conftest_adds_is_not_mistaken_for_a_typo(pytester):
    pytester.makeconftest("""
        def pytest_addoption(parser):
            parser.addoption("--llm-team-flag", action="store_true")
    """)
    pytester.makepyfile("def test_plain():\n    assert True\n")
    assert pytester.runpytest("--llm-team-flag").ret == pytest.ExitCode.OK


@pytest.mark.parametrize("where", ["pytest.ini", "pyproject.toml"])
def test_a_misspelt_ini_key_gets_a_warning_naming_the_nearest_one(pytester, where):
    if where == "pytest.ini":
        pytester.makefile(".ini", pytest="[pytest]\nllm_run = 20\n")
    else:
        pytester.makepyprojecttoml("[tool.pytest.ini_options]\nllm_run = \"20\"\n")
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([f"*LLMCheckWarning: ini key llm_run in *{where} is not an "
                                 "llmcheck setting (did you mean llm_runs?)*"])
    strict = pytester.runpytest("--strict-config")
    assert strict.ret == pytest.ExitCode.USAGE_ERROR
    assert "(did you mean llm_runs?)" in usage_error_line(strict)
