"""llmcheck's version, at the bottom of the house: the records stamp every report
with it, and the public API (``llmcheck.__version__``) re-exports it. Keep it equal
to ``version`` in pyproject.toml."""

__version__ = "0.1.0"
