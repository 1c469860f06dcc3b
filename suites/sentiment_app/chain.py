"""The LangChain version: prompt | ChatOpenAI | parser, on any OpenAI-compatible URL."""

from __future__ import annotations

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from sentiment_app import parse_label, prompt


def build_chain(*, base_url: str, api_key: str, model: str, max_retries: int = 2):  # noqa: ANN201
    """The chain an app would build once at start-up (LangChain's own retries on)."""
    template = ChatPromptTemplate.from_messages([("user", "{question}")])
    chat = ChatOpenAI(base_url=base_url, api_key=api_key, model=model, temperature=0,
                      max_retries=max_retries, timeout=10)
    return template | chat | StrOutputParser()


def classify(chain, review: str) -> str | None:  # noqa: ANN001
    return parse_label(chain.invoke({"question": prompt(review)}))
