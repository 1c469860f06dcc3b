"""An answer in JSON: with a JSON-schema grammar (`response_format`, which llama.cpp's
server turns into a grammar the sampler must follow) and without one.

Measured over 400 answers at temperature 0.7: with the grammar 0.94 of the answers
(95% interval 0.91-0.96) are JSON matching the schema with Maria, aged 34 (the misses
are grammatical JSON with an empty name); without it only 0.70 (0.66-0.75), the rest
prose, a code fence or other keys. Required: 0.85 and 0.6."""

from __future__ import annotations

from pydantic import BaseModel

import llmcheck

PROMPT = ("Extract the person's name and age from this sentence: Maria is 34 years old and "
          "lives in Lisbon. Reply in JSON with the keys name and age.")


class Person(BaseModel):
    name: str
    age: int


GRAMMAR = {"type": "json_object", "schema": Person.model_json_schema()}


@llmcheck.repeat(min_pass_rate=0.85)
def test_extracts_with_a_json_grammar(llm):
    reply = llm(PROMPT, temperature=0.7, max_tokens=40, response_format=GRAMMAR)
    person = llmcheck.assert_schema(reply, Person)
    assert (person.name, person.age) == ("Maria", 34)


@llmcheck.repeat(min_pass_rate=0.6)
def test_extracts_json_without_a_grammar(llm):
    reply = llm(PROMPT, temperature=0.7, max_tokens=40)
    person = llmcheck.assert_schema(reply, Person)
    assert (person.name, person.age) == ("Maria", 34)
