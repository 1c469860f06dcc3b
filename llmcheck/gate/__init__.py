"""The pre-merge gate: comparing a session with a baseline, baselines, history, merging reports."""
