"""Placement blocks: constraint, affinity and spread (structs.Constraint/Affinity/Spread.Validate)."""

from __future__ import annotations

import re

from ..gosyntax import go_quote, re2_error, semver_constraint_ok, version_constraint_ok
from ..values import dicts_at, int_at, str_at

CONSTRAINT_OPERANDS = (
    "=", "==", "is", "!=", "not", "<", "<=", ">", ">=",
    "regexp", "version", "semver",
    "set_contains", "set_contains_all", "set_contains_any",
    "is_set", "is_not_set", "distinct_hosts", "distinct_property",
)  # fmt: skip
_COMPARISONS = ("=", "==", "is", "!=", "not", "<", "<=", ">", ">=")
_SET_CONTAINS = ("set_contains", "set_contains_all", "set_contains_any")


def constraint_errors(con: dict) -> list[str]:
    errors: list[str] = []
    operand, ltarget, rtarget = (
        str_at(con, "Operand"),
        str_at(con, "LTarget"),
        str_at(con, "RTarget"),
    )
    if operand == "":
        errors.append("Missing constraint operand")
    needs_ltarget = True
    if operand == "distinct_hosts":
        needs_ltarget = False
    elif operand in _SET_CONTAINS:
        if rtarget == "":
            errors.append("Set contains constraint requires an RTarget")
    elif operand == "regexp":
        err = re2_error(rtarget)
        if err:
            errors.append(f"Regular expression failed to compile: {err}")
    elif operand == "version":
        if not version_constraint_ok(rtarget):
            errors.append(f"Version constraint is invalid: Malformed constraint: {rtarget}")
    elif operand == "semver":
        if not semver_constraint_ok(rtarget):
            errors.append(f"Semver constraint is invalid: Malformed constraint: {rtarget}")
    elif operand == "distinct_property":
        if rtarget != "":
            if not re.fullmatch(r"[0-9]+", rtarget) or int(rtarget) >= 2**64:
                errors.append(
                    f"Failed to convert RTarget {go_quote(rtarget)} to uint64: strconv.ParseUint: "
                    f"parsing {go_quote(rtarget)}: invalid syntax"
                )
            elif int(rtarget) < 1:
                errors.append(
                    f"Distinct Property must have an allowed count of 1 or greater: {rtarget} < 1"
                )
    elif operand in ("is_set", "is_not_set"):
        if rtarget != "":
            errors.append(f"Operator {go_quote(operand)} does not support an RTarget")
    elif operand in _COMPARISONS:
        if rtarget == "":
            errors.append(f"Operator {go_quote(operand)} requires an RTarget")
    else:
        errors.append(f"Unknown constraint type {go_quote(operand)}")
    if needs_ltarget and ltarget == "":
        errors.append("No LTarget provided but is required by constraint")
    attr_err = _attribute_error(ltarget)
    if attr_err:
        errors.append(attr_err)
    return errors


def _attribute_error(target: str) -> str | None:
    # Newer Nomad (structs/constraint.go) rejects interpolations the scheduler cannot resolve.
    if not target.startswith("${"):
        return None
    if not target.endswith("}"):
        return f"attribute {go_quote(target)} is missing a closing brace"
    inner = target[2:-1]
    if inner in (
        "node.unique.id",
        "node.datacenter",
        "node.unique.name",
        "node.class",
        "node.pool",
    ):
        return None
    if inner.startswith(("attr.", "meta.", "device.")):
        return None
    return f"unsupported attribute {go_quote(target)}"


def affinity_errors(aff: dict) -> list[str]:
    errors: list[str] = []
    operand, rtarget = str_at(aff, "Operand"), str_at(aff, "RTarget")
    if operand == "":
        errors.append("Missing affinity operand")
    if operand in _SET_CONTAINS:
        if rtarget == "":
            errors.append("Set contains operators require an RTarget")
    elif operand == "regexp":
        err = re2_error(rtarget)
        if err:
            errors.append(f"Regular expression failed to compile: {err}")
    elif operand == "version":
        if not version_constraint_ok(rtarget):
            errors.append(f"Version affinity is invalid: Malformed constraint: {rtarget}")
    elif operand == "semver":
        if not semver_constraint_ok(rtarget):
            errors.append(f"Semver affinity is invalid: Malformed constraint: {rtarget}")
    elif operand in _COMPARISONS:
        if rtarget == "":
            errors.append(f"Operator {go_quote(operand)} requires an RTarget")
    else:
        errors.append(f"Unknown affinity operator {go_quote(operand)}")
    if str_at(aff, "LTarget") == "":
        errors.append("No LTarget provided but is required")
    weight = int_at(aff, "Weight", 50)  # api default when absent
    if weight == 0:
        errors.append("Affinity weight cannot be zero")
    if not -100 <= weight <= 100:
        errors.append("Affinity weight must be within the range [-100,100]")
    return errors


def spread_errors(spread: dict) -> list[str]:
    errors: list[str] = []
    if str_at(spread, "Attribute") == "":
        errors.append("Missing spread attribute")
    weight = int_at(spread, "Weight", 50)  # api default when absent
    if weight <= 0 or weight > 100:
        errors.append("Spread block must have a positive weight from 0 to 100")
    seen: set[str] = set()
    total = 0
    for target in dicts_at(spread, "SpreadTarget"):
        value = str_at(target, "Value")
        if value in seen:
            errors.append(f"Spread target value {go_quote(value)} already defined")
        seen.add(value)
        percent = int_at(target, "Percent", 0)
        if not 0 <= percent <= 100:
            errors.append(
                f"Spread target percentage for value {go_quote(value)} must be between 0 and 100"
            )
        total += percent
    if total > 100:
        errors.append(
            f"Sum of spread target percentages must not be greater than 100%; got {total}%"
        )
    return errors
