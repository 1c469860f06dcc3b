"""Tools from Python functions: the schema the model sees, and a checked call.

``@llmcheck.tool`` (or a plain function handed to :func:`llmcheck.run_tool_loop`)
becomes a :class:`Tool`: its parameters' JSON schema is derived from the type hints by
pydantic (defaults, ``Optional``, nested pydantic models, ``Literal`` choices), its
description is the docstring's first paragraph, and a parameter's description comes
from a Google-style ``Args:`` section. A parameter named ``state`` receives the loop's
world state and is left out of the schema.

The arguments a model sends are untrusted: they are read as strict JSON
(:mod:`llmcheck.model.jsontext`) and validated by pydantic before the function runs,
so a call that does not fit becomes a tool error the model is told about
(:class:`ToolArgumentError`), never a crash and never an ``eval``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any, get_type_hints

import pydantic
from pydantic.json_schema import GenerateJsonSchema

from llmcheck.errors import UsageError
from llmcheck.model.completion import parse_json_text

__all__ = ["STATE_PARAM", "Tool", "ToolArgumentError", "ToolTimeout", "as_tools", "tool"]

STATE_PARAM = "state"
"""The parameter that receives the loop's world state (never shown to the model)."""

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI accepts as a function name
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


class ToolArgumentError(ValueError):
    """The model's arguments do not parse as a JSON object or do not fit the signature."""


class ToolTimeout(TimeoutError):
    """The tool did not return within its timeout (the loop stops waiting for it)."""


class _NoTitles(GenerateJsonSchema):
    """pydantic's schema without the ``title`` it derives from every field name: noise
    in every request the model reads."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


class Tool:
    """A function the model may call: its name, description, parameter schema, and a
    call that validates the model's arguments first. Calling the Tool object calls the
    function as written (a decorated function stays usable in plain code)."""

    fn: Callable[..., Any]

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 description: str | None = None, timeout: float | None = None) -> None:
        if isinstance(fn, Tool):
            fn = fn.fn
        if not callable(fn):
            raise UsageError(f"a tool must be a function, got {fn!r}")
        label = getattr(fn, "__qualname__", None) or repr(fn)
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise UsageError(f"tool {label}: name {self.name!r} must be 1-64 letters, digits, "
                             "'_' or '-' (what model providers accept)")
        self.timeout = check_timeout(timeout, f"tool {self.name}: timeout")
        self.is_async = inspect.iscoroutinefunction(fn)
        doc = inspect.getdoc(fn) or ""
        self.description = (description if description is not None
                            else doc.split("\n\n")[0].strip().replace("\n", " "))
        self.takes_state, self.model, self.signature = _params_model(fn, self.name, label,
                                                                     _arg_docs(doc))
        self.parameters = self.model.model_json_schema(schema_generator=_NoTitles)
        self.parameters.pop("title", None)
        functools.update_wrapper(self, fn)

    def schema(self) -> dict[str, Any]:
        """The tool as the OpenAI ``tools=[...]`` list names it (what litellm sends on)."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def parse(self, arguments: str) -> tuple[Any, dict[str, Any]]:
        """``(the parsed JSON, the validated keyword arguments)`` of the model's
        ``arguments`` text; :class:`ToolArgumentError` saying what does not fit."""
        try:
            raw = parse_json_text(arguments or "{}", allow_fence=False)
        except ValueError as exc:
            raise ToolArgumentError(f"arguments of {self.signature} are not JSON: "
                                    f"{exc}") from None
        if not isinstance(raw, dict):
            raise ToolArgumentError(f"arguments of {self.signature} must be a JSON object, "
                                    f"got {type(raw).__name__}")
        try:
            validated = self.model.model_validate(raw)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                for e in exc.errors(include_url=False))
            raise ToolArgumentError(f"arguments do not fit {self.signature}: "
                                    f"{problems}") from None
        return raw, {field: getattr(validated, field) for field in type(validated).model_fields}

    def _kwargs(self, kwargs: dict[str, Any], state: Any) -> dict[str, Any]:
        return {**kwargs, STATE_PARAM: state} if self.takes_state else kwargs

    def invoke(self, kwargs: dict[str, Any], state: Any = None,
               timeout: float | None = None) -> Any:
        """Run the tool with validated ``kwargs``: an async tool in its own event loop,
        and with a timeout in a helper thread that is abandoned (not killed: Python
        cannot) when it does not return in time (:class:`ToolTimeout`)."""
        call = functools.partial(self.fn, **self._kwargs(kwargs, state))
        if self.is_async:
            return asyncio.run(self._await(call, timeout))
        if timeout is None:
            return call()
        return _run_in_thread(call, timeout, self.name)

    async def ainvoke(self, kwargs: dict[str, Any], state: Any = None,
                      timeout: float | None = None) -> Any:
        """Awaitable :meth:`invoke`: a sync tool runs in a worker thread, so a slow one
        neither blocks the event loop nor outlives its timeout for the loop."""
        call = functools.partial(self.fn, **self._kwargs(kwargs, state))
        if self.is_async:
            return await self._await(call, timeout)
        if timeout is None:
            return await asyncio.to_thread(call)
        return await asyncio.to_thread(_run_in_thread, call, timeout, self.name)

    async def _await(self, call: Callable[[], Any], timeout: float | None) -> Any:
        if timeout is None:
            return await call()
        try:
            return await asyncio.wait_for(call(), timeout)
        except asyncio.TimeoutError:
            raise ToolTimeout(f"{self.name} did not return within {timeout:g} s") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<llmcheck tool {self.signature}>"


def check_timeout(value: Any, what: str) -> float | None:
    """``value`` as seconds > 0, or None; a usage error naming ``what`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or value == float("inf"):
        raise UsageError(f"{what}={value!r} must be a number of seconds > 0, or None")
    return float(value)


def _run_in_thread(call: Callable[[], Any], timeout: float, name: str) -> Any:
    """``call()`` in a daemon thread (with this context: a tool that calls the model is
    still attributed to the sample), waited for at most ``timeout`` seconds."""
    box: dict[str, Any] = {}
    ctx = contextvars.copy_context()

    def target() -> None:
        try:
            box["value"] = ctx.run(call)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"llmcheck-tool-{name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ToolTimeout(f"{name} did not return within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _arg_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section of a docstring."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    starts = [i for i, line in enumerate(lines)
              if line.strip() in ("Args:", "Arguments:", "Parameters:")]
    if not starts:
        return out
    indent, current = None, None
    for line in lines[starts[0] + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if depth == 0:
            break  # the next section
        match = _ARG_LINE.match(line)
        if match and (indent is None or depth <= indent):
            indent, current = depth, match.group(1).lstrip("*")
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def _params_model(fn: Callable[..., Any], name: str, label: str,
                  docs: dict[str, str]) -> tuple[bool, type[pydantic.BaseModel], str]:
    """The pydantic model of ``fn``'s parameters (``state`` left out), whether it takes
    ``state``, and its signature as the model's error messages show it."""
    try:
        signature = inspect.signature(fn)
        hints = get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise UsageError(f"tool {label}: cannot read its signature and type hints ({exc}); "
                         "a type named in a hint must be importable from the function's "
                         "module (not local to a function)") from None
    fields: dict[str, Any] = {}
    shown: list[str] = []
    takes_state = False
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            stars = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise UsageError(f"tool {label}: {stars}{param.name} cannot be described to a "
                             "model; name every parameter")
        if param.kind is param.POSITIONAL_ONLY:
            raise UsageError(f"tool {label}: positional-only parameter {param.name!r}; a "
                             "model passes arguments by name")
        if param.name == STATE_PARAM:
            takes_state = True
            continue
        if param.name not in hints:
            raise UsageError(f"tool {label}: parameter {param.name!r} has no type hint; "
                             "annotate it (e.g. city: str) so the model knows what to send")
        annotation = hints[param.name]
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, pydantic.Field(default,
                                                         description=docs.get(param.name)))
        shown.append(f"{param.name}: {_type_name(annotation)}"
                     + ("" if default is ... else f" = {default!r}"))
    try:
        model = pydantic.create_model(f"{name}_arguments",
                                      __config__=pydantic.ConfigDict(extra="forbid"),
                                      **fields)
        model.model_json_schema(schema_generator=_NoTitles)
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError,
            TypeError) as exc:
        raise UsageError(f"tool {label}: its parameters have no JSON schema "
                         f"({' '.join(str(exc).split()).split('. ')[0]}); use JSON types, "
                         "pydantic models or dataclasses") from None
    return takes_state, model, f"{name}({', '.join(shown)})"


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return re.sub(r"\b(?:typing|builtins|[\w.]+\.)(?=\w)", "", repr(annotation)) \
        .replace("NoneType", "None")


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None, timeout: float | None = None) -> Any:
    """Make ``fn`` a tool a model can call: ``@llmcheck.tool`` or
    ``@llmcheck.tool(name=..., description=..., timeout=...)``.

    The parameters' JSON schema comes from the type hints (through pydantic), the
    description from the docstring's first paragraph (``description`` overrides), each
    parameter's description from an ``Args:`` section. A parameter named ``state``
    gets the loop's world state. ``timeout`` (seconds) stops waiting for a slow call:
    the model is told it timed out. A bad definition (``*args``, a parameter without a
    type hint or with one pydantic cannot describe) is a :class:`UsageError` naming
    the function. Returns a :class:`Tool`, which still calls ``fn`` when called.
    """
    if fn is None:
        return lambda f: Tool(f, name=name, description=description, timeout=timeout)
    return Tool(fn, name=name, description=description, timeout=timeout)


_made: weakref.WeakKeyDictionary[Any, Tool] = weakref.WeakKeyDictionary()
"""Tools made from plain functions, kept while the function lives: deriving a schema
costs milliseconds, and a test passes the same functions to every episode."""


def _tool_of(fn: Any) -> Tool:
    try:
        made = _made.get(fn)
    except TypeError:  # not weakly referable (a builtin, a callable object's class...)
        return Tool(fn)
    if made is None:
        made = _made[fn] = Tool(fn)
    return made


def as_tools(tools: Iterable[Any]) -> dict[str, Tool]:
    """The tools of a loop by name: :class:`Tool` objects or plain functions; a name
    given twice is a usage error (the model could not tell them apart)."""
    if isinstance(tools, (str, bytes, dict)) or callable(tools) \
            or not isinstance(tools, Iterable):
        raise UsageError(f"tools must be a list of functions or llmcheck.tool objects, "
                         f"got {tools!r}")
    out: dict[str, Tool] = {}
    for item in tools:
        made = item if isinstance(item, Tool) else _tool_of(item)
        if made.name in out:
            raise UsageError(f"two tools are named {made.name!r} ({out[made.name].fn!r} and "
                             f"{made.fn!r}); give one another name with "
                             "@llmcheck.tool(name=...)")
        out[made.name] = made
    return out
