"""Policy blocks: restart, reschedule, update and migrate, each validated after merging over the
api defaults (api.*.Canonicalize) the way the server receives it."""

from __future__ import annotations

from typing import Any

from ..gosyntax import HOUR, MINUTE, SECOND, go_duration, go_quote

# api.DefaultUpdateStrategy, api restart/reschedule/migrate defaults: what a partial JSON block
# is merged over before the server validates it.
UPDATE_DEFAULTS = {
    "Stagger": 30 * SECOND,
    "MaxParallel": 1,
    "HealthCheck": "checks",
    "MinHealthyTime": 10 * SECOND,
    "HealthyDeadline": 5 * MINUTE,
    "ProgressDeadline": 10 * MINUTE,
    "AutoRevert": False,
    "AutoPromote": False,
    "Canary": 0,
}
MIGRATE_DEFAULTS = {
    "MaxParallel": 1,
    "HealthCheck": "checks",
    "MinHealthyTime": 10 * SECOND,
    "HealthyDeadline": 5 * MINUTE,
}
RESTART_DEFAULTS = {
    "service": {
        "Attempts": 2,
        "Interval": 30 * MINUTE,
        "Delay": 15 * SECOND,
        "Mode": "fail",
    },
    "batch": {
        "Attempts": 3,
        "Interval": 24 * HOUR,
        "Delay": 15 * SECOND,
        "Mode": "fail",
    },
}
RESTART_DEFAULTS["system"] = RESTART_DEFAULTS["service"]
RESTART_DEFAULTS["sysbatch"] = RESTART_DEFAULTS["batch"]
RESCHEDULE_DEFAULTS = {
    "service": {
        "Attempts": 0,
        "Interval": 0,
        "Delay": 30 * SECOND,
        "DelayFunction": "exponential",
        "MaxDelay": HOUR,
        "Unlimited": True,
    },
    "batch": {
        "Attempts": 1,
        "Interval": 24 * HOUR,
        "Delay": 5 * SECOND,
        "DelayFunction": "constant",
        "MaxDelay": 0,
        "Unlimited": False,
    },
}
RESCHEDULE_EMPTY = {
    "Attempts": 0,
    "Interval": 0,
    "Delay": 0,
    "DelayFunction": "",
    "MaxDelay": 0,
    "Unlimited": False,
}
_DELAY_FUNCTIONS = ("constant", "exponential", "fibonacci")


def update_set(update: Any) -> bool:
    """api UpdateStrategy.Empty() negated: a job-level block groups inherit."""
    return isinstance(update, dict) and any(v not in (None, 0, False, "") for v in update.values())


def restart_errors(rp: dict) -> list[str]:
    errors: list[str] = []
    mode, attempts = rp["Mode"], rp["Attempts"]
    interval, delay = rp["Interval"], rp["Delay"]
    if mode not in ("delay", "fail"):
        errors.append(f"Unsupported restart mode: {go_quote(str(mode))}")
    if not all(isinstance(v, int) for v in (attempts, interval, delay)):
        return errors
    if attempts == 0 and mode != "fail":
        errors.append(f"Restart policy {go_quote(str(mode))} with {attempts} attempts is ambiguous")
    if interval < 5 * SECOND:
        errors.append(f"Interval can not be less than 5s (got {go_duration(interval)})")
    if attempts * delay > interval:
        errors.append(
            f"Nomad can't restart the TaskGroup {attempts} times in an interval of "
            f"{go_duration(interval)} with a delay of {go_duration(delay)}"
        )
    return errors


def reschedule_errors(rp: dict) -> list[str]:
    attempts, interval, delay = rp["Attempts"], rp["Interval"], rp["Delay"]
    max_delay, unlimited, func = (
        rp["MaxDelay"],
        rp["Unlimited"] is True,
        rp["DelayFunction"],
    )
    if not all(isinstance(v, int) for v in (attempts, interval, delay, max_delay)):
        return []
    if not (attempts > 0 or unlimited):
        return []  # disabled policies are not validated
    errors: list[str] = []
    if attempts > 0:
        if interval <= 0:
            errors.append("Interval must be a non zero value if Attempts > 0")
        if unlimited:
            errors.append(
                f"Reschedule Policy with Attempts = {attempts}, Interval = {go_duration(interval)}, "
                "and Unlimited = true is ambiguous"
            )
            errors.append("If Attempts >0, Unlimited cannot also be set to true")
    precheck = True
    if delay < 5 * SECOND:
        errors.append(f"Delay cannot be less than 5s (got {go_duration(delay)})")
        precheck = False
    if func not in _DELAY_FUNCTIONS:
        shown = " ".join(go_quote(f) for f in _DELAY_FUNCTIONS)
        errors.append(f"Invalid delay function {go_quote(str(func))}, must be one of [{shown}]")
        precheck = False
    if func != "constant":
        if max_delay < 5 * SECOND:
            errors.append(f"Max Delay cannot be less than 5s (got {go_duration(delay)})")
            precheck = False
        if max_delay < delay:
            errors.append(
                f"Max Delay cannot be less than Delay {go_duration(delay)} (got {go_duration(max_delay)})"
            )
            precheck = False
    if not unlimited:
        if interval < 15 * SECOND:
            errors.append(f"Interval cannot be less than 15s (got {go_duration(interval)})")
        if precheck:
            errors.extend(_reschedule_viability(attempts, interval, delay, max_delay, func))
    return errors


def _reschedule_viability(
    attempts: int, interval: int, delay: int, max_delay: int, func: str
) -> list[str]:
    possible, recommended, valid = 0, 0, True
    if func == "constant":
        recommended = attempts * delay
        if interval < recommended:
            possible, valid = interval // delay, False
    elif func == "exponential":
        for i in range(attempts):
            nxt = (2**i) * delay
            if nxt > max_delay:
                recommended += max_delay
            else:
                recommended = nxt
            if recommended < interval:
                possible += 1
        valid = possible >= attempts
    else:  # fibonacci
        slots = [delay, delay]
        ceiling = False
        for i in range(2, attempts):
            if ceiling:
                nxt = slots[i - 1] + max_delay
            else:
                nxt = slots[i - 1] + slots[i - 2]
                if nxt > max_delay:
                    nxt, ceiling = max_delay, True
            slots.append(nxt)
        recommended = slots[-1]
        if interval < recommended:
            valid = False
            possible = next((i for i, s in enumerate(slots) if s > interval), 0)
    if valid:
        return []
    if func == "constant":
        head = (
            f"Nomad can only make {max(possible, 0)} attempts in {go_duration(interval)} with initial "
            f'delay {go_duration(delay)} and delay function "constant"'
        )
    else:
        head = (
            f"Nomad can only make {max(possible, 0)} attempts in {go_duration(interval)} with initial "
            f"delay {go_duration(delay)}, delay function {go_quote(func)}, and delay ceiling {go_duration(max_delay)}"
        )
    rounded = (recommended + SECOND // 2) // SECOND * SECOND
    return [
        head,
        f"Set the interval to at least {go_duration(rounded)} to accommodate {attempts} attempts",
    ]


def update_errors(up: dict) -> list[str]:
    errors: list[str] = []
    if up["HealthCheck"] not in ("checks", "task_states", "manual"):
        errors.append(f"Invalid health check given: {go_quote(str(up['HealthCheck']))}")
    ints = (
        "MaxParallel",
        "Canary",
        "MinHealthyTime",
        "HealthyDeadline",
        "ProgressDeadline",
        "Stagger",
    )
    if not all(isinstance(up[k], int) for k in ints):
        return errors
    if up["MaxParallel"] < 0:
        errors.append(f"Max parallel can not be less than zero: {up['MaxParallel']} < 0")
    if up["Canary"] < 0:
        errors.append(f"Canary count can not be less than zero: {up['Canary']} < 0")
    if up["Canary"] == 0 and up["AutoPromote"] is True:
        errors.append("Auto Promote requires a Canary count greater than zero")
    min_healthy, deadline, progress = (
        up["MinHealthyTime"],
        up["HealthyDeadline"],
        up["ProgressDeadline"],
    )
    if min_healthy < 0:
        errors.append(f"Minimum healthy time may not be less than zero: {go_duration(min_healthy)}")
    if deadline <= 0:
        errors.append(f"Healthy deadline must be greater than zero: {go_duration(deadline)}")
    if progress < 0:
        errors.append(f"Progress deadline must be zero or greater: {go_duration(progress)}")
    if min_healthy >= deadline:
        errors.append(
            "Minimum healthy time must be less than healthy deadline: "
            f"{go_duration(min_healthy)} > {go_duration(deadline)}"
        )
    if progress != 0 and deadline >= progress:
        errors.append(
            "Healthy deadline must be less than progress deadline: "
            f"{go_duration(deadline)} > {go_duration(progress)}"
        )
    if up["Stagger"] <= 0:
        errors.append(f"Stagger must be greater than zero: {go_duration(up['Stagger'])}")
    return errors


def migrate_errors(mg: dict) -> list[str]:
    errors: list[str] = []
    if not all(
        isinstance(mg[k], int) for k in ("MaxParallel", "MinHealthyTime", "HealthyDeadline")
    ):
        return errors
    if mg["MaxParallel"] < 0:
        errors.append(f"MaxParallel must be >= 0 but found {mg['MaxParallel']}")
    check = mg["HealthCheck"]
    if check == "":
        if mg["MaxParallel"] > 0:
            errors.append("Missing HealthCheck")
    elif check not in ("checks", "task_states"):
        errors.append(f"Invalid HealthCheck: {go_quote(str(check))}")
    if mg["MinHealthyTime"] < 0:
        errors.append(f"MinHealthyTime is {go_duration(mg['MinHealthyTime'])} and must be >= 0")
    if mg["HealthyDeadline"] < 0:
        errors.append(f"HealthyDeadline is {go_duration(mg['HealthyDeadline'])} and must be >= 0")
    if mg["MinHealthyTime"] > mg["HealthyDeadline"]:
        errors.append("MinHealthyTime must be less than HealthyDeadline")
    return errors
