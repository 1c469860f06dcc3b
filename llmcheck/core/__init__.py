"""The sample: its context, the runner that repeats a test body, seeded bodies."""
