"""What every record shares: secrets removed from its strings, JSON for any code point,
and the numbers of a record read back from a file checked against what a run can
produce (:mod:`llmcheck.records.bounds`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticSerializationError
from typing_extensions import Self

from llmcheck.redact import scrub
from llmcheck.text import utf8_json

LOADED = {"llmcheck_loaded": True}
"""The validation context of a record read from a file (``model_validate(data,
context=LOADED)``): its numbers are checked too. A record built during a run is not
checked again: its numbers come from the code that counted them."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_secrets(cls, value: Any) -> Any:
        """Every string a record holds passes here: the boundary where secrets are
        removed (see :mod:`llmcheck.redact`)."""
        return scrub(value)

    @model_validator(mode="after")
    def _numbers_in_range(self, info: ValidationInfo) -> Any:
        """On load: every number finite, counts >= 0, rates in [0, 1] and the counts
        consistent (:func:`llmcheck.records.bounds.problem`); a ValueError naming the
        field otherwise."""
        if isinstance(info.context, dict) and info.context.get("llmcheck_loaded"):
            from llmcheck.records.bounds import problem

            found = problem(self)
            if found is not None:
                raise ValueError(found)
        return self

    def model_dump_json(self, *, indent: int | None = None, **kwargs: Any) -> str:
        """The record as JSON text, whatever code points its strings hold: model output
        may hold a lone surrogate (``"\\ud800"`` in a provider's valid JSON), which
        pydantic cannot encode; it is then written as the JSON escape it came as."""
        try:
            return super().model_dump_json(indent=indent, **kwargs)
        except PydanticSerializationError as exc:
            if "surrogates not allowed" not in str(exc):
                raise
        return escaped_json(self.model_dump(mode="json", **kwargs), indent)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray,
                            **kwargs: Any) -> Self:
        """The record of JSON text; pydantic's parser refuses the escape of a lone
        surrogate that :meth:`model_dump_json` may write, so such a text is parsed by
        :func:`json.loads` instead."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            if exc.errors()[0]["type"] != "json_invalid":
                raise
            try:
                data = json.loads(json_data)
            except (ValueError, RecursionError):
                raise exc from None
        return cls.model_validate(data, **kwargs)


def escaped_json(value: Any, indent: int | None = None) -> str:
    """``value`` (plain JSON data) as :func:`llmcheck.text.utf8_json` text, an infinite
    or NaN float written as null, as pydantic writes them."""
    def finite(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, list):
            return [finite(x) for x in v]
        return v

    return utf8_json(finite(value), indent)
