"""Length limits: a one-sentence description asked for, at most 25 words and one
sentence. Measured: 0.97 of 400 answers at temperature 0.7 (95% interval 0.95-0.98)
keep both limits. Required: 0.88."""

from __future__ import annotations

import llmcheck


@llmcheck.repeat(min_pass_rate=0.88)
def test_describes_the_sea_in_one_short_sentence(llm):
    reply = llm("Describe the sea in one short sentence.", temperature=0.7, max_tokens=60)
    llmcheck.assert_length(reply, min_words=3, max_words=25, max_sentences=1)
