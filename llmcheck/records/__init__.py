"""What a session measured, as pydantic records: the models (samples, tests), the
session record, statistics derived from samples, a test's resolved settings, and
load/save/migrate. :mod:`llmcheck.records.schema` exports every public name.
"""
