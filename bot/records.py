"""Frozen records that are cheap to make: `fast_init` gives a frozen dataclass an `__init__`
that writes its fields straight into the instance's dict.

The `__init__` a frozen dataclass gets sets each field through `object.__setattr__` (it must
get past the class's own `__setattr__`, which raises): ~0.15 us a field, 2 us for an `Order`.
An order of the paper exchange makes about eight such records (the order, its fill, the
intent, the result, the round trip, ...), and a backtest makes thousands of orders. The
`__init__` made here takes the same arguments (names, order, defaults, default factories,
keyword-only fields), makes the fields that are not init arguments from their default factories, and calls
`__post_init__` when the class has one, so the record is the same object; assigning a field
still raises.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

__all__ = ["fast_init"]

_T = TypeVar("_T")


def fast_init(cls: type[_T]) -> type[_T]:
    """Give the frozen dataclass `cls` an `__init__` that sets its fields in its `__dict__`
    (see the module docstring); used as the decorator above `@dataclass(frozen=True)`."""
    if not dataclasses.is_dataclass(cls) or "__slots__" in cls.__dict__:
        raise TypeError(f"fast_init needs a dataclass with an instance dict, not {cls!r}")
    env: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    params: list[str] = []
    body: list[str] = []
    keyword_only = False
    for f in dataclasses.fields(cls):
        name, default, factory = f.name, f.default, f.default_factory
        if default is not dataclasses.MISSING:
            env[f"_d_{name}"] = default
        if factory is not dataclasses.MISSING:
            env[f"_f_{name}"] = factory
        if not f.init:   # (a plain default stays the class's attribute, as the dataclass leaves it)
            if factory is not dataclasses.MISSING:
                body.append(f"__rec[{name!r}] = _f_{name}()")
            continue
        if f.kw_only and not keyword_only:
            params.append("*")
            keyword_only = True
        if default is not dataclasses.MISSING:
            params.append(f"{name}=_d_{name}")
            body.append(f"__rec[{name!r}] = {name}")
        elif factory is not dataclasses.MISSING:
            params.append(f"{name}=_MISSING")
            body.append(f"__rec[{name!r}] = _f_{name}() if {name} is _MISSING else {name}")
        else:
            params.append(name)
            body.append(f"__rec[{name!r}] = {name}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    lines = [f"def __init__(self, {', '.join(params)}):", "    __rec = self.__dict__"] + [f"    {b}" for b in body]
    exec("\n".join(lines), env)   # noqa: S102  (the source is built above from the fields' names)
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__signature__ = inspect.signature(cls.__init__)   # the dataclass's, for help() and tools
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
