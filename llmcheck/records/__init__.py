"""What a session measured, as pydantic records: schema, statistics derived from samples,
load and save.
"""
