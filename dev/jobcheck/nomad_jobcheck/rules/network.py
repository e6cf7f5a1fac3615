"""Network rules: a group's network block and its ports, and the ports of task networks
(structs.TaskGroup.validateNetworks): labels unique, static ports not reserved twice per host
network, values and mappings in range."""

from __future__ import annotations

from ..gosyntax import go_quote
from ..values import dicts_at, int_at, str_at
from .base import Rules


def check_group_networks(r: Rules, tg: dict, tasks: list[dict]) -> None:
    networks = dicts_at(tg, "Networks")
    if len(networks) > 1:
        # Stricter than Nomad on purpose: 1.5.8 accepts a second group network, but its
        # client uses only the first (command/agent/consul/structs.go), so it is ignored.
        r.add("Only one network block is allowed per group")
    labels: dict[str, str] = {}
    static: dict[str, dict[int, str]] = {}
    for net in networks:
        for kind, port in ports_of(net):
            label = str_at(port, "Label")
            if label == "":
                # Stricter than Nomad on purpose: accepted, but no task or service can
                # ever name the port, so it is a mistake.
                r.add(f"{kind} port has an empty Label")
            if label in labels:
                r.add(f"Port label {label} already in use by {labels[label]}")
            else:
                labels[label] = "taskgroup network"
            _port_value(r, kind, port, label, static, f"taskgroup network:{label}")
            to = int_at(port, "To", 0)
            if to < -1:
                r.add(f"Port {go_quote(label)} cannot be mapped to negative value {to}")
            elif to > 65535:
                r.add(
                    f"Port {go_quote(label)} cannot be mapped to a port ({to}) greater than 65535"
                )
    for task in tasks:
        res = task.get("Resources")
        for net in dicts_at(res, "Networks") if isinstance(res, dict) else ():
            for kind, port in ports_of(net):
                label = str_at(port, "Label")
                if label in labels:
                    r.add(f"Port label {label} already in use by {labels[label]}")
                _port_value(r, kind, port, label, static, f"{str_at(task, 'Name')}:{label}")


def _port_value(r: Rules, kind: str, port: dict, label: str, static: dict, owner: str) -> None:
    value = int_at(port, "Value", 0)
    if kind == "ReservedPorts" and value < 1:
        r.add(f"Static port {label} must have a Value between 1 and 65535; got {value}")
        return
    if value < 0:
        r.add(f"Port {label} cannot have a negative Value {value}")
        return
    if value == 0:
        return
    index = static.setdefault(str_at(port, "HostNetwork") or "default", {})
    if value in index and port.get("IgnoreCollision") is not True:
        r.add(f"Static port {value} already reserved by {index[value]}")
    elif value > 65535:
        r.add(f"Port {label} ({value}) cannot be greater than 65535")
    else:
        index[value] = owner


def ports_of(net: dict) -> list[tuple[str, dict]]:
    return [(kind, p) for kind in ("ReservedPorts", "DynamicPorts") for p in dicts_at(net, kind)]
