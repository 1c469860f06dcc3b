"""The same agent built with LangChain, as an app builds it: LangChain tools, a chat
model with the tools bound, and the app's own loop. It calls the model with its own
client (``ChatOpenAI``), so a test points it at ``llm_endpoint`` and llmcheck sees every
call: the tools the model asked for, with their arguments, and the results the app sent
back (``llmcheck.recorded_episode()`` rebuilds the episode from them).
"""

from __future__ import annotations

from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langchain_openai import ChatOpenAI

from order_agent import shop


def build_agent(store: shop.Store, *, base_url: str, api_key: str, model: str,
                max_retries: int = 2):  # noqa: ANN201
    """A chat model with the shop's two tools bound, acting on ``store``."""

    def lookup_order(order_id: str) -> dict:
        """Look an order up by its number."""
        return shop.lookup_order(order_id, store)

    def cancel_order(order_id: str, reason: str) -> dict:
        """Cancel an order that has not been delivered yet."""
        return shop.cancel_order(order_id, reason, store)

    tools = {fn.__name__: StructuredTool.from_function(fn) for fn in (lookup_order,
                                                                      cancel_order)}
    chat = ChatOpenAI(base_url=base_url, api_key=api_key, model=model, max_retries=max_retries,
                      timeout=10)
    return chat.bind_tools(list(tools.values())), tools


def handle(agent, request: str, *, max_steps: int = 6) -> str:  # noqa: ANN001
    """Run the agent's loop on one customer request; the final answer's text."""
    chat, tools = agent
    messages = [SystemMessage(shop.SYSTEM), HumanMessage(request)]
    for _ in range(max_steps):
        reply = chat.invoke(messages)
        messages.append(reply)
        if not reply.tool_calls:
            return str(reply.content)
        for call in reply.tool_calls:
            try:
                result = tools[call["name"]].invoke(call["args"])
            except Exception as exc:  # noqa: BLE001 - the model is told, as apps do
                result = f"error: {exc}"
            messages.append(ToolMessage(str(result), tool_call_id=call["id"]))
    return ""
