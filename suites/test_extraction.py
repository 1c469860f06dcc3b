"""Structured extraction, checked with a pydantic model.

Runs against the built-in simulator by default. Against a real model:

    pytest suites/test_extraction.py --llm-runs=20 \
        --llm-model=openai/gpt-4o-mini --llm-api-key-env=OPENAI_API_KEY

or a local server (llama.cpp, vLLM, Ollama's OpenAI API):

    pytest suites/test_extraction.py --llm-model=openai/my-model \
        --llm-api-base=http://127.0.0.1:8080/v1
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict

import llmcheck

PROMPT = "Return Ada Lovelace as JSON with name and age. Answer with the JSON object only."


class Person(BaseModel):
    # strict: "36" is not an int. A model that quotes numbers breaks real parsers.
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str
    age: int


@llmcheck.repeat(min_pass_rate=0.7)
def test_extracts_a_valid_person(llm):
    """What most apps need: the answer parses (a ```json fence is tolerated) and
    matches the schema."""
    reply = llm(PROMPT)
    person = llmcheck.assert_schema(reply, Person, lenient=True)
    assert person.name == "Ada Lovelace"
    assert 30 <= person.age <= 40


@pytest.mark.xfail(reason="about 1 answer in 10 wraps the JSON in prose or a code fence, "
                          "or quotes the age; a parser that expects bare JSON breaks",
                   strict=False)
@llmcheck.repeat(min_pass_rate=0.99)
def test_answer_is_bare_json(llm):
    """Stricter: the whole answer is the JSON object, nothing around it, in at
    least 99% of answers."""
    # strict: the message says when lenient=True would have passed
    llmcheck.assert_schema(llm(PROMPT), Person)
