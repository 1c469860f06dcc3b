"""The simulator's embeddings: deterministic vectors that behave like real ones.

Texts that share words or word pieces get a high cosine similarity, so semantic
checks can be exercised offline and reproducibly, with no model.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from llmcheck.simulator.request import RequestError, required_field

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1 << 16)
def _feature_hash(feature: str) -> int:
    # blake2b, not hash(): stable across processes regardless of PYTHONHASHSEED.
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")


def embed(text: str, dimensions: int = 256) -> list[float]:
    """A deterministic, L2-normalised hashed bag of words and character trigrams.

    Texts sharing words (or word pieces) get a high cosine similarity,
    identical texts exactly 1.0; unrelated texts land near 0. Each feature is
    hashed to a slot with a sign bit, so collisions cancel out on average.
    """
    vector = [0.0] * dimensions
    words = _WORD.findall(text.lower()) or ["<empty>"]
    for word in words:
        features: list[tuple[str, float]] = [("w:" + word, 1.0)]
        padded = f"^{word}$"
        features.extend(("c:" + padded[i : i + 3], 0.3) for i in range(len(padded) - 2))
        for feature, weight in features:
            h = _feature_hash(feature)
            vector[h % dimensions] += -weight if h >> 63 else weight
    norm = math.sqrt(sum(x * x for x in vector))
    if norm == 0.0:  # every feature cancelled out: fall back to a fixed unit vector
        vector[_feature_hash("<zero>") % dimensions] = 1.0
        return vector
    return [x / norm for x in vector]


def embedding_base64(vector: Sequence[float]) -> str:
    """A vector as OpenAI's ``encoding_format: base64``: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def parse_embedding_request(body: Any, default_model: str,
                            default_dimensions: int) -> tuple[list[str], str, int, str]:
    """The texts, model, dimensions and encoding format of an embeddings request,
    checked the way OpenAI would (a :class:`RequestError` naming the bad field)."""
    raw = required_field(body, "input")
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        texts = [" ".join(map(str, raw))]  # one pre-tokenised input
    elif isinstance(raw, list) and raw:
        texts = []
        for i, item in enumerate(raw):
            if isinstance(item, str):
                texts.append(item)
            elif isinstance(item, list) and all(isinstance(x, int) for x in item):
                texts.append(" ".join(map(str, item)))
            else:
                raise RequestError(
                    f"input[{i}] must be a string or an array of tokens", param="input"
                )
    else:
        raise RequestError("'input' must be a string or a non-empty array", param="input")
    model = body.get("model") or default_model
    dims = body.get("dimensions")
    if dims is None:
        dims = default_dimensions
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 4096:
        raise RequestError("'dimensions' must be an integer from 1 to 4096", param="dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise RequestError(
            "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
        )
    return texts, str(model), dims, fmt


__all__ = ["embed", "embedding_base64", "parse_embedding_request"]
