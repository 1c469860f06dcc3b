"""Rendering saved records: the terminal summary, the shared view, markdown, HTML and the
files beside the JSON.
"""
