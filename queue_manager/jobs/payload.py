"""A job class's payload: the state its ``__init__`` set, sent as JSON, set again on a fresh instance in the worker.

Plain values, lists and dicts of them, pydantic models, dataclasses, datetimes, UUIDs, enums and decimals go as
pydantic writes them (``to_jsonable_python``); anything else is refused when the job is dispatched, naming the
attribute and its type, never pickled. In the worker each value is read back through the type the class annotates
it with (``user: User`` on the class, or the ``__init__`` parameter of that name), so a model arrives as a model.
Attributes whose name starts with ``_`` are the instance's own, never sent.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from queue_manager.errors import JobPayloadError


def payload_of(job: Any) -> dict[str, Any]:
    """The job's state as JSON data, or JobPayloadError naming what cannot be sent."""
    state: dict[str, Any] = {}
    for name, value in vars(job).items():
        if name.startswith("_"):
            continue
        try:
            state[name] = to_jsonable_python(value)
        except (PydanticSerializationError, TypeError, ValueError):
            raise JobPayloadError(
                f"{type(job).__qualname__}.{name} is a {type(value).__qualname__}, which a job cannot carry: a job's "
                "attributes are sent as JSON (str, int, float, bool, None, lists and dicts of them, pydantic models, "
                "dataclasses, datetimes, UUIDs, enums). Keep what identifies it (an id) and load the object in "
                "handle(), or name it with a leading underscore to keep it out of the payload."
            ) from None
    return state


def restore(cls: type[Any], state: dict[str, Any]) -> Any:
    """A new instance of ``cls`` holding ``state`` (its ``__init__`` is not called: the state is what it set)."""
    job: Any = object.__new__(cls)
    adapters = _adapters(cls)
    plain = _PLAIN[cls]
    for name, value in state.items():
        adapter = adapters.get(name)
        if adapter is None or value is None or type(value) is plain.get(name):  # already what it is annotated as
            job.__dict__[name] = value
            continue
        try:
            job.__dict__[name] = adapter.validate_python(value)
        except ValidationError as error:
            raise JobPayloadError(
                f"{cls.__qualname__}.{name}: the job carries a value its annotation does not accept "
                f"({error.error_count()} error(s): {error.errors()[0]['msg']})."
            ) from None
    return job


_ADAPTERS: dict[type[Any], dict[str, TypeAdapter[Any]]] = {}
#: the attributes annotated with a plain JSON type (str, int, bool): a value of exactly that type needs no reading
_PLAIN: dict[type[Any], dict[str, type[Any]]] = {}


def _adapters(cls: type[Any]) -> dict[str, TypeAdapter[Any]]:
    """What each attribute is read back as: the class's annotations, else its ``__init__`` parameter's (made once
    per class)."""
    if cls in _ADAPTERS:
        return _ADAPTERS[cls]
    hints: dict[str, Any] = {}
    for source in (cls.__init__, cls):
        try:
            found = typing.get_type_hints(source)
        except Exception:  # an annotation that cannot be resolved: that attribute stays plain JSON
            continue
        hints.update({name: hint for name, hint in found.items() if typing.get_origin(hint) is not ClassVar})
    hints.pop("return", None)
    adapters: dict[str, TypeAdapter[Any]] = {}
    for name, hint in hints.items():
        try:
            adapters[name] = TypeAdapter(hint)
        except Exception:  # a type pydantic cannot validate (it was refused at dispatch anyway)
            continue
    _PLAIN[cls] = {name: hint for name, hint in hints.items() if hint in (str, int, bool)}
    _ADAPTERS[cls] = adapters
    return adapters
