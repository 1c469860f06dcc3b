"""An order-support agent: two tools over a small store, driven by a model.

``shop`` holds the world the tools change and the tools themselves (plain Python);
``plain`` runs the agent with llmcheck's tool loop; ``with_langchain`` is the same agent
built with LangChain, as an app would build it, calling the model through its own client.
"""
