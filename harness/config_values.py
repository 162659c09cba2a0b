"""Config values: check or convert a TOML / command-line value against a dataclass field's type hint.

Command-line overrides arrive as strings ("16,128", "true", "0.3"); TOML gives typed values. Both
pass through ``coerce``, which raises ValueError for the caller to turn into a one-line error that
names the key and where it came from (harness/config.py).
"""

from __future__ import annotations

import math
import typing
from typing import Any


def type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return "a list of " + {int: "integers", float: "finite numbers", str: "strings", bool: "booleans"}.get(item, str(item))
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and len(args) < len(typing.get_args(hint)):
        return type_name(args[0])
    return {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _scalar(value: Any, hint: type) -> Any:
    """``value`` as ``hint``; strings (from the command line) are parsed. Raises ValueError."""
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return int(value)
    elif hint is float and not isinstance(value, bool) and isinstance(value, (int, float, str)):
        number = float(value)
        if math.isfinite(number):  # NaN passes every range check below, inf busy-loops a sampler
            return number
    elif hint is str and isinstance(value, str):
        return value
    raise ValueError(value)


def coerce(value: Any, hint: Any) -> Any:
    """Check/convert ``value`` against a type hint (int, float, bool, str, tuple[X, ...], X | None)."""
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, str):  # "cpu,dml" or '["cpu", "dml"]' from the command line
            value = [part.strip().strip("'\"") for part in value.strip().strip("[]").split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(value)
        return tuple(_scalar(v, item) for v in value)
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
            return None
        return coerce(value, next(a for a in args if a is not type(None)))
    return _scalar(value, hint)
