"""Settings at the bottom of the house: plain data every layer may read.

- :mod:`llmcheck.config.settings`: the one table of every option, validation of a
  raw value, the marker's keywords, and where a session setting came from;
- :mod:`llmcheck.config.names`: the names a setting accepts (verdict policies,
  interval methods);
- :mod:`llmcheck.config.faults`: the fault kinds and the ``KIND:RATE`` form;
- :mod:`llmcheck.config.reference`: the options page generated from the table.

A test's settings are resolved into a record by :mod:`llmcheck.records.resolve`,
and its policy chosen by :mod:`llmcheck.stats.design`: both need more than plain data.
"""
