"""Objects handed to tests by llmcheck's fixtures."""

from __future__ import annotations

import random

from llmcheck.errors import UsageError
from llmcheck.runner import SampleInfo, current_info


class SampleProxy:
    """Reads the running sample's index and seed at the moment it is used.

    Fixtures are set up once per item, but an item runs many samples (possibly
    in parallel threads or tasks), so the fixture value cannot hold the index
    itself; it looks it up in the current sample's context instead.
    """

    def _info(self) -> SampleInfo:
        info = current_info()
        if info is None:
            raise UsageError(
                "llm_sample is only available while a sample of an LLM test runs; mark the "
                "test with @llmcheck.repeat(...) or @pytest.mark.llm(...) and use it in the "
                "test body"
            )
        return info

    @property
    def index(self) -> int:
        """0-based index of this sample within the test."""
        return self._info().index

    @property
    def seed(self) -> int:
        """Seed of this sample, stable for a given --llm-seed, test and index."""
        return self._info().seed

    @property
    def runs(self) -> int:
        """Samples planned for this test."""
        return self._info().runs

    @property
    def rng(self) -> random.Random:
        """A ``random.Random`` seeded with this sample's seed."""
        return self._info().rng

    def __repr__(self) -> str:
        info = current_info()
        if info is None:
            return "<llm_sample: outside a sample>"
        return f"<llm_sample index={info.index} seed={info.seed} runs={info.runs}>"
