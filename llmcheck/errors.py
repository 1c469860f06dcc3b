"""Exceptions raised by llmcheck.

Everything llmcheck raises on purpose derives from :class:`LLMCheckError`,
except check failures, which are assertion failures so that they compose with
plain ``assert`` and with pytest's reporting::

    LLMCheckError
    ├── UsageError            bad input from the user: an option, a decorator
    │                         argument, a schema, a suite or scenario file.
    │                         A broken test is not a failing model.
    ├── InfrastructureError   the harness could not get an answer from the
    │                         model (after its retries). A sample that raises
    │                         it is an ``error``: neither a pass nor a failure.
    └── ReportError           a report read back from disk is missing, corrupt
                              or of an unknown schema version.

    LLMCheckWarning (a UserWarning)   something the user likely did not mean, such
                              as a test that uses the ``llm`` fixture without
                              being marked; ``-W error::llmcheck.LLMCheckWarning``
                              makes it fail the test.
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


class ReportError(LLMCheckError):
    """A report file could not be read back."""


class LLMCheckWarning(UserWarning):
    """Something the user likely did not mean; the message says what to do."""


__all__ = ["LLMCheckError", "UsageError", "InfrastructureError", "ReportError",
           "LLMCheckWarning"]
