"""Benchmarks of the checks library, printed as a table.

1. ``assert_schema`` on a ~2 KB JSON answer, in checks per second, with the
   compiled validator reused (what the library does) vs rebuilt on every
   call: against a pydantic model, a ``list[...]`` TypeAdapter and a JSON
   Schema (jsonschema, format checking on);
2. fuzzy comparison of two ~1 KB strings: rapidfuzz's ``fuzz.ratio`` vs the
   standard library's ``difflib.SequenceMatcher.ratio``, and the full
   ``assert_golden(..., "fuzzy")`` check.

Checks run inside a sample context, so recording is part of the cost. Every
figure is the median over repeats of a timed batch.

    python benchmarks/checks.py            # full
    python benchmarks/checks.py --smoke    # quick check that it runs (CI)
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel, Field  # noqa: E402
from rapidfuzz import fuzz  # noqa: E402
from tabulate import tabulate  # noqa: E402

from llmcheck.checks import assert_golden, assert_schema  # noqa: E402
from llmcheck.checks import schema as schema_module  # noqa: E402
from llmcheck.core import context  # noqa: E402
from llmcheck.core.context import SampleContext  # noqa: E402


class Item(BaseModel):
    sku: str = Field(min_length=3)
    title: str
    quantity: int = Field(ge=1)
    unit_price: float = Field(ge=0)


class Address(BaseModel):
    street: str
    city: str
    postcode: str
    country: Literal["FR", "DE", "GB", "US"]


class Order(BaseModel):
    id: str
    status: Literal["new", "paid", "shipped"]
    email: str
    shipping: Address
    items: list[Item]
    notes: str | None = None


def make_answer(rng: random.Random) -> str:
    """A ~2 KB JSON answer an order-extraction prompt might produce."""
    items = [{"sku": f"SKU-{rng.randrange(10**6):06d}",
              "title": " ".join(rng.choice(["red", "large", "cotton", "shirt", "mug", "lamp",
                                            "wooden", "desk", "set", "of", "two"])
                                for _ in range(5)),
              "quantity": rng.randint(1, 5), "unit_price": round(rng.uniform(1, 200), 2)}
             for _ in range(14)]
    order = {"id": "ord_8f2a", "status": "paid", "email": "ada@example.com",
             "shipping": {"street": "12 St James's Square", "city": "London",
                          "postcode": "SW1Y 4JH", "country": "GB"},
             "items": items, "notes": "Leave at the door."}
    return json.dumps(order, indent=1)


def per_second(fn: Callable[[], object], batch: int, repeats: int) -> float:
    """Median calls per second of ``fn`` over ``repeats`` timed batches."""
    ctx = SampleContext(index=0, seed=0)
    token = context._set(ctx)
    try:
        times = []
        for _ in range(repeats):
            ctx.checks.clear()
            t0 = time.perf_counter()
            for _ in range(batch):
                fn()
            times.append((time.perf_counter() - t0) / batch)
    finally:
        context._reset(token)
    return 1.0 / statistics.median(times)


def bench_schema(batch: int, repeats: int) -> list[list[object]]:
    answer = make_answer(random.Random(1))
    items_answer = json.dumps(json.loads(answer)["items"])
    json_schema = Order.model_json_schema()
    json_schema["properties"]["email"]["format"] = "email"
    json_key = json.dumps(json_schema, sort_keys=True)

    def rebuilt_model() -> None:
        schema_module._ADAPTERS.clear()
        assert_schema(answer, Order)

    def rebuilt_list() -> None:
        schema_module._ADAPTERS.clear()
        assert_schema(items_answer, list[Item])

    def rebuilt_json_schema() -> None:
        schema_module._compile_json_schema.cache_clear()
        assert_schema(answer, json.loads(json_key))

    rows = []
    cases = [
        (f"schema: pydantic model ({len(answer):,} B)", lambda: assert_schema(answer, Order),
         rebuilt_model),
        (f"schema: list[Item] TypeAdapter ({len(items_answer):,} B)",
         lambda: assert_schema(items_answer, list[Item]), rebuilt_list),
        (f"schema: JSON Schema dict ({len(answer):,} B)",
         lambda: assert_schema(answer, json_schema), rebuilt_json_schema),
    ]
    for label, reused, rebuilt in cases:
        fast = per_second(reused, batch, repeats)
        slow = per_second(rebuilt, max(batch // 10, 5), repeats)
        rows.append([label, f"{fast:,.0f}/s", f"{slow:,.0f}/s", f"{fast / slow:.1f}x",
                     "reused vs rebuilt validator"])
    return rows


def bench_fuzzy(batch: int, repeats: int) -> list[list[object]]:
    rng = random.Random(2)
    words = ("the model answered with a long explanation of the capital of france which is "
             "paris and also mentioned lyon marseille and the river seine").split()
    a = " ".join(rng.choice(words) for _ in range(200))[:1024]
    b_words = a.split()
    for _ in range(20):  # ~10% of the words edited
        b_words[rng.randrange(len(b_words))] = rng.choice(words)
    b = " ".join(b_words)[:1024]
    rf = per_second(lambda: fuzz.ratio(a, b), batch, repeats)
    dl = per_second(lambda: difflib.SequenceMatcher(None, a, b).ratio(),
                    max(batch // 20, 5), repeats)
    check = per_second(lambda: assert_golden(a, b, "fuzzy", 0.5), max(batch // 10, 5), repeats)
    rf_score = fuzz.ratio(a, b) / 100
    dl_score = difflib.SequenceMatcher(None, a, b).ratio()
    scores = f"scores {rf_score:.3f} vs {dl_score:.3f}"
    return [
        ["fuzzy 1 KB: rapidfuzz vs difflib ratio", f"{rf:,.0f}/s", f"{dl:,.0f}/s",
         f"{rf / dl:.0f}x", scores],
        ["fuzzy 1 KB: assert_golden(fuzzy) check", f"{check:,.0f}/s", "", "",
         "normalizes both texts, records the result"],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one quick repeat of each")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    batch = 20 if args.smoke else 400
    rows = bench_schema(batch, repeats) + bench_fuzzy(batch * 5, repeats)
    print(tabulate(rows, headers=["benchmark", "ours", "baseline", "ratio", "note"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
