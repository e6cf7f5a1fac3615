"""The stand-in's network model: port environment variables and who listens where.

Port variables follow client/taskenv/env.go (Nomad v1.10, addPorts / addGroupPort):
  NOMAD_IP_<l>, NOMAD_HOST_IP_<l>     the host IP of the allocated port
  NOMAD_HOST_PORT_<l>                 the host port (the allocated Value)
  NOMAD_ADDR_<l>, NOMAD_HOST_ADDR_<l> host IP : host port
  NOMAD_PORT_<l>, NOMAD_ALLOC_PORT_<l> the port the task binds: `to` when set, else the host port
So `${NOMAD_IP_x}:${NOMAD_PORT_x}` is the host IP with the container's port: under Docker port
mapping (`to` differing from the host port) it reaches nothing.

Network namespaces, as the Docker driver (drivers/docker/driver.go, network mode "bridge" of the
Docker daemon by default) and Nomad's group network modes (client/allocrunner/networking_*.go) set
them up:
  - group `network { mode = "bridge" }`: one namespace per allocation, shared by its tasks;
    each group port maps host IP:Value -> that namespace's `to` port (or Value);
  - group mode "host" (the default) and a docker task without `network_mode = "host"`: each
    such task has its own container namespace; each label in its `config.ports` maps host
    IP:Value -> the container's `to` port (or Value); labels not listed there are not published;
  - a docker task with `network_mode = "host"`, or another driver (exec, raw_exec) in host mode:
    the task runs in the node's namespace and binds NOMAD_PORT_<l> on the node's address.
A task listens on the port of each label it is given (docker: `config.ports`; without them in
bridge mode, and for other drivers: the group's ports no docker task of the group lists) while it
is running. 127.0.0.1 inside a namespace reaches only
that namespace; a node's address reaches its host listeners and published ports.
Not modelled: Consul Connect/envoy upstreams, CNI plugins, IPv6, `host_network`, firewalls.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCALHOSTS = ("127.0.0.1", "localhost", "0.0.0.0")


def port_env(ports: list[dict]) -> dict[str, str]:
    """The NOMAD_*_<label> variables of allocated ports ({"Label", "Value", "To", "HostIP"})."""
    env: dict[str, str] = {}
    for p in ports:
        label, value, ip = p["Label"], int(p["Value"]), p["HostIP"]
        to = int(p.get("To") or 0)
        inner = str(to if to > 0 else value)
        env[f"NOMAD_IP_{label}"] = ip
        env[f"NOMAD_HOST_IP_{label}"] = ip
        env[f"NOMAD_PORT_{label}"] = inner
        env[f"NOMAD_ALLOC_PORT_{label}"] = inner
        env[f"NOMAD_HOST_PORT_{label}"] = str(value)
        env[f"NOMAD_ADDR_{label}"] = f"{ip}:{value}"
        env[f"NOMAD_HOST_ADDR_{label}"] = f"{ip}:{value}"
    return env


@dataclass(frozen=True)
class Endpoint:
    """A running task listening on a port: what an address reaches."""

    alloc_id: str
    alloc_name: str
    job_id: str
    namespace: str
    group: str
    task: str
    label: str
    node: str
    port: int  # the port the task binds inside its namespace


@dataclass(frozen=True)
class Mapping:
    """A published port: host IP:host port on `node` -> `port` in namespace `netns`."""

    node: str
    host_ip: str
    host_port: int
    netns: str
    port: int
    label: str
    alloc_id: str


def _group(alloc) -> dict:
    for g in alloc.job.get("TaskGroups") or []:
        if g["Name"] == alloc.group:
            return g
    return {}


def _group_mode(group: dict) -> str:
    nets = group.get("Networks") or []
    return (nets[0].get("Mode") or "host") if nets else "host"


def task_netns(alloc, task: dict) -> str:
    """The network namespace a task runs in."""
    node = alloc.node["Name"]
    if _group_mode(_group(alloc)) == "bridge":
        return f"alloc:{alloc.id}"
    cfg = task.get("Config") or {}
    if task.get("Driver") == "docker" and cfg.get("network_mode", "") not in ("host",):
        return f"task:{alloc.id}:{task['Name']}"
    return f"host:{node}"


def _task_labels(alloc, task: dict) -> list[str]:
    """Labels whose NOMAD_PORT_<l> the task binds."""
    own = [p["Label"] for p in alloc.task_ports.get(task["Name"], [])]
    listed = list((task.get("Config") or {}).get("ports") or [])
    group = _group(alloc)
    if task.get("Driver") == "docker" and (listed or _group_mode(group) != "bridge"):
        return listed + own
    # bridge mode (docker `ports` not needed there) or another driver: the group's ports that
    # no docker task of the group claims in its `ports`.
    claimed = {
        lbl
        for t in group.get("Tasks") or []
        if t is not task
        for lbl in (t.get("Config") or {}).get("ports") or []
    }
    return [p["Label"] for p in alloc.ports if p["Label"] not in claimed] + own


def _ports_of(alloc, task: dict | None) -> dict[str, dict]:
    ports = {p["Label"]: p for p in alloc.ports}
    if task is not None:
        ports.update({p["Label"]: p for p in alloc.task_ports.get(task["Name"], [])})
    return ports


def _inner(p: dict) -> int:
    to = int(p.get("To") or 0)
    return to if to > 0 else int(p["Value"])


class Network:
    """Reachability over a NomadState's allocations, computed on demand under its lock."""

    def __init__(self, nomad_state) -> None:
        self.state = nomad_state
        self.externals: dict[tuple[str, int], str] = {}  # (ip, port) -> name, outside Nomad

    def add_external(self, address: str, name: str) -> None:
        """A listener outside the cluster (an external service's real address)."""
        host, _, port = address.rpartition(":")
        with self.state.lock:
            self.externals[(host.strip("[]"), int(port))] = name

    def _live(self):
        for a in self.state.allocs.values():
            if a.terminal or a.node.get("Status") != "ready":
                continue
            yield a

    def listeners(self) -> dict[tuple[str, str, int], Endpoint]:
        """(netns, ip or "*", port) -> the running task listening there."""
        out: dict[tuple[str, str, int], Endpoint] = {}
        for a in self._live():
            for task in _group(a).get("Tasks") or []:
                run = a.tasks.get(task["Name"])
                if run is None or run.state != "running":
                    continue
                netns = task_netns(a, task)
                ports = _ports_of(a, task)
                for label in _task_labels(a, task):
                    p = ports.get(label)
                    if p is None:
                        continue
                    port = _inner(p)
                    ip = a.node["Address"] if netns.startswith("host:") else "*"
                    out.setdefault(
                        (netns, ip, port),
                        Endpoint(
                            a.id,
                            a.name,
                            a.job_id,
                            a.namespace,
                            a.group,
                            task["Name"],
                            label,
                            a.node["Name"],
                            port,
                        ),
                    )
        return out

    def mappings(self) -> list[Mapping]:
        """Every published port of every live allocation."""
        out: list[Mapping] = []
        for a in self._live():
            group = _group(a)
            node = a.node["Name"]
            if _group_mode(group) == "bridge":
                for p in a.ports:
                    out.append(
                        Mapping(
                            node,
                            p["HostIP"],
                            int(p["Value"]),
                            f"alloc:{a.id}",
                            _inner(p),
                            p["Label"],
                            a.id,
                        )
                    )
                continue
            for task in group.get("Tasks") or []:
                netns = task_netns(a, task)
                if netns.startswith("host:"):
                    continue  # binds the node's address itself
                ports = _ports_of(a, task)
                for label in _task_labels(a, task):
                    p = ports.get(label)
                    if p is not None:
                        out.append(
                            Mapping(
                                node, p["HostIP"], int(p["Value"]), netns, _inner(p), label, a.id
                            )
                        )
        return out

    def reach(self, address: str, source: tuple[str, str] | None = None) -> Endpoint | None:
        """What `address` ("host:port") reaches from `source` (alloc ID, task name), or from
        another machine when `source` is None: the listening task, or None."""
        host, _, port_s = address.rpartition(":")
        host = host.strip("[]")
        try:
            port = int(port_s)
        except ValueError:
            return None
        with self.state.lock:
            listeners = self.listeners()
            if host in LOCALHOSTS:
                if source is None:
                    return None
                netns = self._source_netns(source)
                if netns is None:
                    return None
                if netns.startswith("host:"):
                    node = netns[5:]
                    return self._on_node(node, self._node_ip(node), port, listeners)
                return listeners.get((netns, "*", port))
            node = self._node_by_ip(host)
            if node is None:
                name = self.externals.get((host, port))
                return Endpoint("", "", name, "", "", "", "external", "", port) if name else None
            return self._on_node(node, host, port, listeners)

    def _on_node(self, node: str, ip: str, port: int, listeners) -> Endpoint | None:
        for m in self.mappings():
            if m.node == node and m.host_ip == ip and m.host_port == port:
                return listeners.get((m.netns, "*", m.port))
        return listeners.get((f"host:{node}", ip, port))

    def _source_netns(self, source: tuple[str, str]) -> str | None:
        alloc_id, task_name = source
        a = self.state.allocs.get(alloc_id)
        if a is None:
            return None
        for task in _group(a).get("Tasks") or []:
            if task["Name"] == task_name:
                return task_netns(a, task)
        return None

    def _node_by_ip(self, ip: str) -> str | None:
        for n in self.state.nodes:
            if n["Address"] == ip and n["Status"] == "ready":
                return n["Name"]
        return None

    def _node_ip(self, node: str) -> str:
        for n in self.state.nodes:
            if n["Name"] == node:
                return n["Address"]
        return ""
