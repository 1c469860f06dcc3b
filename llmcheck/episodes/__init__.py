"""Episodes: a tool loop, a conversation or a stream judged as one sample.

:mod:`~llmcheck.episodes.episode` holds the data every source of episodes builds and
every path check reads.
"""
