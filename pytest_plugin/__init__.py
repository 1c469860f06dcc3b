"""The pytest integration of llmcheck (loaded through the ``pytest11`` entry point)."""
