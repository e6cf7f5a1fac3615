"""Reading the loosely typed job dict: a value of the expected type, else the default (a wrong
type is reported once, by the schema part), and type names for messages."""

from __future__ import annotations

from typing import Any


def str_at(obj: Any, key: str, default: str = "") -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else default


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_at(obj: Any, key: str, default: Any = None) -> Any:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if is_int(value) else default


dur_at = int_at  # durations are integer ns; wrong types are reported by check_typed_fields


def list_at(obj: Any, key: str) -> list:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def dicts_at(obj: Any, key: str) -> list[dict]:
    return [item for item in list_at(obj, key) if isinstance(item, dict)]


def merged(base: dict | None, over: Any) -> dict | None:
    """api-style Merge: non-null fields of `over` replace those of `base`."""
    if base is None:
        return None
    result = dict(base)
    if isinstance(over, dict):
        result.update({k: v for k, v in over.items() if v is not None and k in base})
    return result


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
