"""The ``llmcheck`` command line."""
