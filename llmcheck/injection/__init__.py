"""Fault injection: the catalogue of what providers do, and where it is injected.

- :mod:`llmcheck.injection.catalogue`: the kinds, :class:`FaultPlan`, and how each
  fault looks on the wire;
- :mod:`llmcheck.injection.attribution`: which plan applies to a request, and which
  sample a request belongs to; the ``llm_faults`` fixture's handle;
- :mod:`llmcheck.injection.inprocess`: interception of every httpx request the code
  under test makes (litellm, the openai SDK, LangChain);
- :mod:`llmcheck.model.proxy`: an OpenAI-compatible HTTP proxy for any client.

The public entry points are ``@llmcheck.faults``, ``--llm-faults``, the ``llm_faults``
fixture, ``llmcheck.inject(...)`` for scripts and ``llmcheck proxy``.
"""

from llmcheck.injection.catalogue import KINDS, FaultPlan

__all__ = ["KINDS", "FaultPlan"]
