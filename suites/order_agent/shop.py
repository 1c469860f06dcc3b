"""The store the agent works on, and its two tools.

The tools take the store as ``state`` (llmcheck's tool loop hands it in and leaves it
out of the schema the model sees), so a test can check the store after the episode,
as tau-bench checks the database and not only the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM = ("You handle the orders of a kitchenware shop for its customers. Use the tools: look "
          "an order up before you change it.")


@dataclass
class Order:
    id: str
    item: str
    status: str = "shipped"
    cancel_reason: str | None = None


@dataclass
class Store:
    orders: dict[str, Order] = field(default_factory=dict)

    @classmethod
    def example(cls) -> Store:
        return cls({o.id: o for o in (Order("1042", "blender"), Order("1024", "kettle"))})


def lookup_order(order_id: str, state: Store) -> dict:
    """Look an order up by its number.

    Args:
        order_id: the order number, e.g. "1042"
    """
    order = state.orders.get(order_id)
    if order is None:
        raise KeyError(f"no order {order_id}")
    return {"order_id": order.id, "item": order.item, "status": order.status}


def cancel_order(order_id: str, reason: str, state: Store) -> dict:
    """Cancel an order that has not been delivered yet.

    Args:
        order_id: the order number
        reason: why the customer cancels
    """
    order = state.orders.get(order_id)
    if order is None:
        raise KeyError(f"no order {order_id}")
    order.status, order.cancel_reason = "cancelled", reason
    return {"order_id": order.id, "status": order.status}


TOOLS = [lookup_order, cancel_order]
