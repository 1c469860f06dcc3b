"""Exceptions raised by llmcheck.

Everything llmcheck raises on purpose derives from :class:`LLMCheckError`,
except check failures, which are assertion failures so that they compose with
plain ``assert`` and with pytest's reporting::

    LLMCheckError
    ├── UsageError            bad input from the user: an option, a decorator
    │                         argument, a schema, a suite or scenario file.
    │                         A broken test is not a failing model.
    ├── InfrastructureError   the harness could not get an answer from the
    │   │                     model (after its retries). A sample that raises
    │   │                     it is an ``error``: neither a pass nor a failure.
    │   ├── ModelCallError    no answer after every retry (or the retry budget)
    │   ├── CallsStopped      model calls were stopped (Ctrl-C, a dead server)
    │   ├── BudgetSpent       the session's budget refused the request: not sent,
    │   │                     and the sample is budget-stopped, not an error
    │   ├── JudgeError        the judge's reply could not be understood
    │   └── LocalServerError  a local model server did not start, or died
    └── ReportError           a report read back from disk is missing, corrupt
                              or of an unknown schema version.

    LLMCheckWarning (a UserWarning)   something the user likely did not mean, such
                              as a test that uses the ``llm`` fixture without
                              being marked; ``-W error::llmcheck.LLMCheckWarning``
                              makes it fail the test.

Check failures (:class:`llmcheck.CheckFailed`, from ``llmcheck.assert_*``) are
``AssertionError`` s, defined with the checks.
"""

from __future__ import annotations


class LLMCheckError(Exception):
    """Base class of every error llmcheck raises on purpose."""


class UsageError(LLMCheckError, ValueError):
    """A value given by the user is invalid; the message names it and what is accepted."""


class InfrastructureError(LLMCheckError):
    """The harness could not get an answer from the model.

    Raised by llmcheck's own model client once its retries are exhausted (rate
    limits, timeouts, connection failures, 5xx). Samples that raise it are
    recorded as ``error`` and never count as passes or as failures.
    """


class ModelCallError(InfrastructureError):
    """The model could not be reached or kept failing after every retry."""

    def __init__(self, message: str, *, attempts: int, cause: BaseException | None = None):
        super().__init__(message)
        self.attempts = attempts
        self.cause = cause


class CallsStopped(InfrastructureError):
    """Model calls were stopped (``stop_calls``, on Ctrl-C): the call was not made, not
    retried, or abandoned in flight. The sample is an ``error``."""

    def __init__(self, message: str, *, reason: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempts = attempts


class BudgetSpent(InfrastructureError):
    """The session's budget (``--llm-max-calls`` or ``--llm-max-cost``) refused a
    request: it was not sent. The sample that made it is budget-stopped, not an error."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"not sent: {reason}")
        self.reason = reason


class JudgeError(InfrastructureError):
    """The judge's reply could not be understood (not JSON, no score in [0, 1])."""


class LocalServerError(InfrastructureError):
    """The local model server could not start, or stopped on its own."""


class ReportError(LLMCheckError):
    """A report file could not be read back."""


class LLMCheckWarning(UserWarning):
    """Something the user likely did not mean; the message says what to do."""


PUBLIC_NAMES = frozenset({
    "LLMCheckError", "UsageError", "InfrastructureError", "ReportError", "LLMCheckWarning",
    "ModelCallError", "CallsStopped", "JudgeError", "CheckFailed"})
"""The exceptions ``import llmcheck`` exports: reports call them ``llmcheck.<Name>``."""

__all__ = ["BudgetSpent", "CallsStopped", "InfrastructureError", "JudgeError",
           "LLMCheckError", "LLMCheckWarning", "LocalServerError", "ModelCallError",
           "ReportError", "UsageError"]
