"""Calling models: the client, the one accounting path every call takes, the cache, the
endpoint and its recording proxy, local models.
"""
