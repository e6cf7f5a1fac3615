"""The only code that talks to Nomad and Consul: one small adapter per service, over python-nomad
and py-consul. Every foreign exception is translated here (`raise ... from`) into the
nomadgen.errors tree, so nothing above this module knows the clients exist. Tests can swap an
adapter for any object with the same methods: `NomadAPI` and `ConsulAPI` say which."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from .errors import (
    BackendError,
    ConfigError,
    Conflict,
    NomadgenError,
    PermissionDenied,
    Rejected,
    Unavailable,
)
from .settings import Endpoint

_ENV_LOCK = threading.Lock()
READ_RETRIES = 2  # reads are retried on connection errors and 5xx; writes never are


class Node(NamedTuple):
    id: str
    name: str
    datacenter: str
    address: str
    status: str
    eligible: bool
    meta: dict[str, str]
    attributes: dict[str, str]


class NomadAPI(Protocol):
    """What the layers above use of Nomad (NomadBackend, or a test's fake)."""

    def ping(self) -> str: ...
    def nodes(self, with_meta: bool) -> list[Node]: ...
    def jobs(self) -> dict[str, dict[str, Any]]: ...
    def job(self, job_id: str) -> dict[str, Any] | None: ...
    def allocations(self, job_id: str) -> list[dict[str, Any]]: ...
    def node_records(self, full: bool) -> list[dict[str, Any]]: ...
    def cluster_allocations(self) -> list[dict[str, Any]]: ...
    def allocation(self, alloc_id: str) -> dict[str, Any] | None: ...
    def node_room(self, node_id: str) -> tuple[int, int] | None: ...
    def deployment(self, job_id: str) -> dict[str, Any] | None: ...
    def evaluation(self, eval_id: str) -> dict[str, Any] | None: ...
    def evaluations(self, job_id: str) -> list[dict[str, Any]]: ...
    def deployment_by_id(self, deployment_id: str) -> dict[str, Any] | None: ...
    def evaluations_by_id(self, ids: list[str]) -> list[dict[str, Any]]: ...
    def deployments_by_id(self, ids: list[str]) -> list[dict[str, Any]]: ...
    def wait_for_change(self, what: str, obj_id: str, index: int, wait: float) -> int: ...
    def plan(self, job: dict[str, Any]) -> dict[str, Any]: ...
    def variable_exists(self, path: str) -> bool: ...
    def variables(self, prefix: str) -> list[dict[str, Any]]: ...
    def variable(self, path: str) -> dict[str, Any] | None: ...
    def delete_variable(self, path: str, modify_index: int) -> bool: ...
    def acl_policies(self) -> dict[str, dict[str, Any]] | None: ...
    def acl_policy(self, name: str) -> dict[str, Any] | None: ...
    def acl_management(self) -> bool: ...
    def put_acl_policy(self, body: dict[str, Any]) -> None: ...
    def delete_acl_policy(self, name: str) -> None: ...
    def create_variable(self, path: str, items: dict[str, str]) -> bool: ...
    def may_write_variable(self, path: str) -> None: ...
    def register(self, job: dict[str, Any], modify_index: int) -> dict[str, Any]: ...
    def stop(self, job_id: str, purge: bool = False) -> dict[str, Any] | None: ...


class ConsulAPI(Protocol):
    """What the layers above use of Consul (ConsulBackend, or a test's fake)."""

    writes: int

    def ping(self) -> str: ...
    def kv_tree(self, prefix: str) -> dict[str, tuple[bytes, int]]: ...
    def kv_get(self, key: str) -> tuple[bytes, int] | None: ...
    def kv_session(self, key: str) -> str: ...
    def kv_keys(self, prefix: str) -> tuple[list[str], bool]: ...
    def txn(self, ops: list[dict[str, Any]]) -> int: ...
    def healthy(self, service: str) -> list[dict[str, Any]]: ...
    def healthy_since(
        self, service: str, index: int = 0, wait: float = 0.0
    ) -> tuple[list[dict[str, Any]], int]: ...
    def service_health(self, service: str) -> list[dict[str, Any]]: ...
    def register_service(
        self,
        name: str,
        service_id: str,
        address: str,
        port: int,
        tags: list[str],
        meta: dict[str, str],
    ) -> None: ...
    def deregister_service(self, service_id: str) -> None: ...
    def may_write_service(self, service_id: str) -> None: ...
    def services(self) -> dict[str, dict[str, Any]]: ...
    def session_create(self, name: str, ttl_s: int, lock_delay_s: int) -> str: ...
    def session_renew(self, session: str) -> bool: ...
    def session_destroy(self, session: str) -> None: ...
    def session_info(self, session: str) -> dict[str, Any] | None: ...
    def kv_acquire(self, key: str, value: bytes, session: str) -> bool: ...
    def kv_release(self, key: str, session: str) -> bool: ...
    def kv_delete_cas(self, key: str, index: int) -> bool: ...


def _hint_for(ep: Endpoint, exc: BaseException) -> str:
    text = f"{type(exc).__name__} {exc}"
    if "SSL" in text or "CERTIFICATE" in text.upper():
        var = "NOMAD_CACERT" if ep.service == "nomad" else "CONSUL_CACERT"
        return f"the TLS certificate was not accepted: set {var} to the CA that signed it"
    var = "NOMAD_ADDR" if ep.service == "nomad" else "CONSUL_HTTP_ADDR"
    return f"is {ep.service} running there? set {var} (or the --{ep.service}-addr flag)"


def _short(body: str, limit: int = 600) -> str:
    body = (body or "").strip()
    return body if len(body) <= limit else body[:limit] + " ..."


def http_session(pool: int = 32) -> Any:
    """A requests.Session for one cluster service, shared by every thread of a command.

    requests reads the proxy and CA-bundle variables (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE,
    ...) from the environment on every request (requests/sessions.py
    merge_environment_settings): about 1 ms of CPU each, the largest client cost of a waiting
    submit. The environment does not change while a command runs, so this session reads it
    once per host and request options, with the same result. Its pool keeps a connection per
    concurrent request (requests' default of 10 drops and reopens the rest)."""
    import requests
    from requests.adapters import HTTPAdapter

    class Session(requests.Session):
        def __init__(self) -> None:
            super().__init__()
            self._settings: dict[tuple[str, ...], dict[str, Any]] = {}
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool)
            self.mount("http://", adapter)
            self.mount("https://", adapter)

        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> dict[str, Any]:
            scheme, rest = str(url).split("://", 1) if "://" in str(url) else ("", str(url))
            host = rest.split("/", 1)[0].split("?", 1)[0]
            key = (
                scheme,
                host,
                repr(sorted((proxies or {}).items())),
                repr((stream, verify, cert)),
            )
            got = self._settings.get(key)
            if got is None:
                got = super().merge_environment_settings(url, proxies, stream, verify, cert)
                self._settings[key] = got
            return dict(got)

    return Session()


def warn_if_unverified(ep: Endpoint) -> None:
    """Once per client, in our words (urllib3 would warn on every request instead)."""
    if ep.verify is not False or ep.scheme != "https":
        return
    import sys
    import warnings

    import urllib3

    warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
    sys.stderr.write(
        f"warning: TLS certificates of {ep.service.capitalize()} at {ep.address} "
        "are not verified: whoever answers there gets the token\n"
    )


class NomadBackend:
    def __init__(self, ep: Endpoint) -> None:
        import nomad  # the HTTP client is loaded only by commands that talk to a cluster
        import nomad.api.exceptions as nex
        import requests

        warn_if_unverified(ep)
        self.ep = ep
        self._nex = nex
        self._requests = requests
        # python-nomad reads NOMAD_* from the environment when an argument is empty; build it
        # with those hidden so only the values we pass count.
        with _ENV_LOCK:
            saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("NOMAD_")}
            try:
                self.client = nomad.Nomad(
                    host=ep.host,
                    port=ep.port,
                    secure=ep.scheme == "https",
                    token=ep.token or None,
                    namespace=ep.namespace or None,
                    region=ep.region or None,
                    timeout=ep.timeout,
                    verify=ep.verify,
                    cert=ep.cert or (),
                    session=http_session(),
                )
            finally:
                os.environ.update(saved)
        self._namespace_known = (ep.namespace or "default") == "default"
        self._management: bool | None = None

    # --- translation ---------------------------------------------------------------------
    def _call(
        self, what: str, fn: Callable[..., Any], *args: Any, read: bool = True, **kwargs: Any
    ) -> Any:
        if not self._namespace_known:
            self._check_namespace()
        return _retrying(
            lambda: fn(*args, **kwargs), lambda exc: self._translate(what, exc, read), read
        )

    def _check_namespace(self) -> None:
        """Once, before the first request: a namespace that does not exist is a configuration
        error, said before anything is read or written (lists in it are merely empty, plans and
        registers fail). Nomad answers 404 "Namespace not found" for it
        (command/agent/namespace_endpoint.go), or 403 to a token with no capability there."""
        ns = self.ep.namespace
        what = f"reading namespace {ns}"
        try:
            _retrying(
                lambda: self.client.namespace.get_namespace(ns),
                lambda exc: self._translate(what, exc, True),
                True,
            )
        except self._nex.URLNotFoundNomadException as exc:
            raise missing_namespace(ns) from exc
        self._namespace_known = True

    def _translate(self, what: str, exc: Exception, read: bool) -> NomadgenError | None:
        nex, ep = self._nex, self.ep
        if isinstance(exc, nex.URLNotAuthorizedNomadException):
            need = _nomad_need(what, ep.namespace or "default")
            return PermissionDenied(
                f"Nomad refused the request ({what}): {_short(_body(exc))}"
                + (f" (the token needs {need})" if need else ""),
                hint="check the Nomad token (NOMAD_TOKEN, --nomad-token-file) and its ACL "
                "policy (README 'ACL policies')",
            )
        if isinstance(exc, nex.BadRequestNomadException):
            return Rejected(f"Nomad rejected {what}: {_short(_body(exc))}")
        if isinstance(exc, (nex.URLNotFoundNomadException, nex.VariableConflict)):
            return None  # the caller decides what absence or a lost create means
        if isinstance(exc, nex.TimeoutNomadException):
            return Unavailable(f"Nomad at {ep.address} timed out ({what})", hint=_hint_for(ep, exc))
        if isinstance(exc, nex.BaseNomadException):
            resp = exc.nomad_resp
            status = getattr(resp, "status_code", None)
            body = _body(exc)
            if isinstance(resp, self._requests.Timeout):
                return Unavailable(
                    f"Nomad at {ep.address} timed out ({what})",
                    hint=f"the server did not answer within {ep.timeout:g}s",
                )
            if status is None:
                return Unavailable(
                    f"cannot reach Nomad at {ep.address} ({what})",
                    hint=_hint_for(ep, resp if isinstance(resp, BaseException) else exc),
                )
            if "nonexistent namespace" in body:  # admission (nomad/job_endpoint_validators.go)
                return missing_namespace(ep.namespace or "default")
            if "Enforcing job modify index" in body:
                return Conflict(
                    f"{what}: the job changed since it was read ({_short(body)})",
                    hint="someone else changed it; run `nomadgen plan` to see the difference, then submit again",
                )
            if status == 500 and not read:  # Nomad answers validation failures with 500
                return Rejected(f"Nomad rejected {what} (HTTP {status}): {_short(body)}")
            return Unavailable(
                f"Nomad answered HTTP {status} to {what}: {_short(body)}",
                hint="the server is failing; try again, and check its logs",
            )
        if isinstance(exc, self._requests.RequestException):
            return Unavailable(
                f"cannot reach Nomad at {ep.address} ({what})", hint=_hint_for(ep, exc)
            )
        return None

    # --- reads -------------------------------------------------------------------------------
    def ping(self) -> str:
        return self._call("reading the leader", self.client.status.leader.get_leader)

    def nodes(self, with_meta: bool) -> list[Node]:
        stubs = self._call("listing nodes", self.client.nodes.get_nodes)
        out = []
        for s in stubs:
            meta: dict[str, str] = {}
            attrs: dict[str, str] = {}
            if with_meta:  # Meta and Attributes only come with the full node
                full = self._call(f"reading node {s['Name']}", self.client.node.get_node, s["ID"])
                meta, attrs = full.get("Meta") or {}, full.get("Attributes") or {}
            out.append(
                Node(
                    s["ID"],
                    s["Name"],
                    s.get("Datacenter", ""),
                    s.get("Address", ""),
                    s.get("Status", ""),
                    s.get("SchedulingEligibility") == "eligible",
                    meta,
                    attrs,
                )
            )
        return sorted(out, key=lambda n: n.name)

    def node_records(self, full: bool) -> list[dict[str, Any]]:
        """The nodes as the API returns them, with NodeResources and ReservedResources (the
        preflight's input); `full` reads each node for its Meta and Attributes too."""
        stubs = self._call("listing nodes", self.client.nodes.get_nodes, resources=True)
        if not full:
            return list(stubs)
        return [
            self._call(f"reading node {s['Name']}", self.client.node.get_node, s["ID"])
            for s in stubs
        ]

    def cluster_allocations(self) -> list[dict[str, Any]]:
        """Every allocation the token may read, in every namespace (they all use the nodes),
        with AllocatedResources."""
        return list(
            self._call(
                "listing allocations",
                self.client.allocations.get_allocations,
                namespace="*",
                resources=True,
                task_states=False,
            )
        )

    def jobs(self) -> dict[str, dict[str, Any]]:
        """All jobs in the namespace, with their Meta (one request)."""
        stubs = self._call("listing jobs", self.client.jobs.get_jobs, meta=True)
        return {s["ID"]: s for s in stubs}

    def job(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self._call(f"reading job {job_id}", self.client.job.get_job, job_id)
        except self._nex.URLNotFoundNomadException:
            return None

    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        try:
            return self._call(
                f"reading allocations of {job_id}", self.client.job.get_allocations, job_id
            )
        except self._nex.URLNotFoundNomadException:
            return []

    def allocation(self, alloc_id: str) -> dict[str, Any] | None:
        """The full allocation (PreviousAllocation, Job), which list stubs lack."""
        try:
            return self._call(
                f"reading allocation {alloc_id}", self.client.allocation.get_allocation, alloc_id
            )
        except self._nex.URLNotFoundNomadException:
            return None

    def node_room(self, node_id: str) -> tuple[int, int] | None:
        """Free CPU (MHz) and memory (MB) of a node as the scheduler counts them: its resources
        less the reserved ones and less every allocation not terminal on the client
        (scheduler/context.go ProposedAllocs). None when the node is gone."""
        try:
            node = self._call(f"reading node {node_id}", self.client.node.get_node, node_id)
            allocs = self._call(
                f"reading allocations of node {node_id}",
                self.client.node.get_allocations,
                node_id,
            )
        except self._nex.URLNotFoundNomadException:
            return None
        res, rsv = node.get("NodeResources") or {}, node.get("ReservedResources") or {}
        cpu = (res.get("Cpu") or {}).get("CpuShares", 0) - (rsv.get("Cpu") or {}).get(
            "CpuShares", 0
        )
        mem = (res.get("Memory") or {}).get("MemoryMB", 0) - (rsv.get("Memory") or {}).get(
            "MemoryMB", 0
        )
        for a in allocs or ():
            if a.get("ClientStatus") in ("complete", "failed", "lost"):
                continue
            for task in ((a.get("AllocatedResources") or {}).get("Tasks") or {}).values():
                cpu -= (task.get("Cpu") or {}).get("CpuShares", 0)
                mem -= (task.get("Memory") or {}).get("MemoryMB", 0)
        return cpu, mem

    def deployment(self, job_id: str) -> dict[str, Any] | None:
        try:
            return self._call(
                f"reading the deployment of {job_id}", self.client.job.get_deployment, job_id
            )
        except self._nex.URLNotFoundNomadException:
            return None

    def evaluation(self, eval_id: str) -> dict[str, Any] | None:
        try:
            return self._call(
                f"reading evaluation {eval_id}", self.client.evaluation.get_evaluation, eval_id
            )
        except self._nex.URLNotFoundNomadException:
            return None

    def evaluations(self, job_id: str) -> list[dict[str, Any]]:
        try:
            return self._call(
                f"reading evaluations of {job_id}", self.client.job.get_evaluations, job_id
            )
        except self._nex.URLNotFoundNomadException:
            return []

    def deployment_by_id(self, deployment_id: str) -> dict[str, Any] | None:
        try:
            return self._call(
                f"reading deployment {deployment_id}",
                self.client.deployment.get_deployment,
                deployment_id,
            )
        except self._nex.URLNotFoundNomadException:
            return None

    BY_ID_CHUNK = 50  # IDs per filter expression: the URL stays a few kB

    def _by_id(self, what: str, endpoint: Any, ids: list[str]) -> list[dict[str, Any]]:
        """Many objects in one list request per chunk, by a filter expression on their IDs
        (Nomad >= 1.2 filters list endpoints: api/evaluations.go, api/deployments.go)."""
        out: list[dict[str, Any]] = []
        params = {"namespace": self.ep.namespace} if self.ep.namespace else {}
        for start in range(0, len(ids), self.BY_ID_CHUNK):
            chunk = ids[start : start + self.BY_ID_CHUNK]
            expr = " or ".join(f'ID == "{i}"' for i in chunk)
            out.extend(
                self._call(
                    f"reading {len(chunk)} {what}",
                    lambda e=expr: endpoint.request(
                        method="get", params={**params, "filter": e}
                    ).json(),
                )
            )
        return out

    def evaluations_by_id(self, ids: list[str]) -> list[dict[str, Any]]:
        return self._by_id("evaluations", self.client.evaluations, ids)

    def deployments_by_id(self, ids: list[str]) -> list[dict[str, Any]]:
        return self._by_id("deployments", self.client.deployments, ids)

    def wait_for_change(self, what: str, obj_id: str, index: int, wait: float) -> int:
        """A blocking query (`?index=&wait=`, command/agent/http.go parseWait) on one object:
        `what` is "evaluation", "deployment" or "allocations" (a job's). Returns when the
        object's index passes `index` or after `wait` (plus the server's jitter of up to
        wait/16); the answer's X-Nomad-Index is the index to wait from next. 0 if it is gone."""
        endpoint: Any = self.client.job
        args: tuple[str, ...] = (obj_id, "allocations")
        if what != "allocations":
            endpoint = self.client.evaluation if what == "evaluation" else self.client.deployment
            args = (obj_id,)
        params = {"index": str(index), "wait": f"{max(1, int(wait * 1000))}ms"}
        try:
            resp = self._call(
                f"waiting on {what} {obj_id}",
                endpoint.request,
                *args,
                method="get",
                params=params,
                # the server may hold the answer for wait + wait/16
                timeout=self.ep.timeout + wait * 17 / 16,
            )
        except self._nex.URLNotFoundNomadException:
            return 0
        return int(resp.headers.get("X-Nomad-Index") or 0)

    def plan(self, job: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call(
                f"planning job {job['ID']}",
                self.client.job.plan_job,
                job["ID"],
                {"Job": job},
                diff=True,
            )
        except self._nex.URLNotFoundNomadException as exc:
            raise Rejected(f"Nomad has no plan endpoint for job {job['ID']}") from exc

    def variable_exists(self, path: str) -> bool:
        """By listing (metadata only): the `list` capability is enough, so a deploy token never
        needs `read` on the secrets it creates (nomad/variables_endpoint.go List filters rows by
        `list`). The namespace goes explicitly: python-nomad leaves it off variable requests."""
        rows = self._call(
            f"listing variable {path}",
            self.client.variables.get_variables,
            prefix=path,
            namespace=self.ep.namespace or None,
        )
        return any(r.get("Path") == path for r in rows or ())

    def variables(self, prefix: str) -> list[dict[str, Any]]:
        """Variable metadata (Path, ModifyIndex; no Items) under `prefix` in the namespace."""
        return list(
            self._call(
                "listing variables",
                self.client.variables.get_variables,
                prefix=prefix,
                namespace=self.ep.namespace or None,
            )
            or ()
        )

    def variable(self, path: str) -> dict[str, Any] | None:
        try:
            return dict(
                self._call(
                    f"reading variable {path}",
                    self.client.variable.get_variable,
                    path,
                    namespace=self.ep.namespace or None,
                )
            )
        except self._nex.URLNotFoundNomadException:
            return None

    def delete_variable(self, path: str, modify_index: int) -> bool:
        """Check-and-set delete: False when the variable changed since it was read (kept)."""
        try:
            self._call(
                f"deleting variable {path}",
                self.client.variable.delete_variable,
                path,
                namespace=self.ep.namespace or None,
                cas=modify_index,
                read=False,
            )
            return True
        except self._nex.VariableConflict:
            return False

    def acl_policies(self) -> dict[str, dict[str, Any]] | None:
        """ACL policy stubs (Name, Description, JobACL) by name; None on a cluster without ACLs."""
        try:
            stubs = self._call("listing ACL policies", self.client.acl.get_policies)
        except Rejected as exc:
            if "ACL support disabled" in exc.subject:
                return None
            raise
        return {s["Name"]: s for s in stubs or ()}

    def acl_policy(self, name: str) -> dict[str, Any] | None:
        try:
            return self._call(f"reading ACL policy {name}", self.client.acl.get_policy, name)
        except self._nex.URLNotFoundNomadException:
            return None

    def acl_management(self) -> bool:
        """Whether the token is a management token: only those list every ACL policy and write
        any (nomad/acl_endpoint.go ListPolicies, UpsertPolicies); a client token sees only the
        policies it holds. Asked once per client, on a cluster with ACLs only."""
        if self._management is None:
            token = self._call("reading the token", self.client.acl.get_self_token)
            self._management = (token or {}).get("Type") == "management"
        return self._management

    # --- writes ------------------------------------------------------------------------------
    def put_acl_policy(self, body: dict[str, Any]) -> None:
        self._call(
            f"writing ACL policy {body['Name']}",
            self.client.acl.create_policy,
            body["Name"],
            body,
            read=False,
        )

    def delete_acl_policy(self, name: str) -> None:
        try:
            self._call(
                f"deleting ACL policy {name}", self.client.acl.delete_policy, name, read=False
            )
        except self._nex.URLNotFoundNomadException:
            pass

    def create_variable(self, path: str, items: dict[str, str]) -> bool:
        """Create only (cas=0): an existing variable is never overwritten. False if it exists."""
        body = {"Namespace": self.ep.namespace or "default", "Path": path, "Items": items}
        try:
            self._call(
                f"creating variable {path}",
                self.client.variable.create_variable,
                path,
                body,
                namespace=self.ep.namespace or None,
                cas=0,
                read=False,
            )
            return True
        except self._nex.VariableConflict:
            return False

    # No variable has this modify index: a check-and-set on it can only lose.
    _PROBE_CAS = 2**62

    def may_write_variable(self, path: str) -> None:
        """PermissionDenied unless the token may write this variable, asked without a write:
        Nomad checks the ACL before the check-and-set (nomad/variables_endpoint.go Apply), and
        a check-and-set on an index no variable has loses (409), storing nothing."""
        body = {"Namespace": self.ep.namespace or "default", "Path": path, "Items": {"probe": "-"}}
        try:
            self._call(
                f"checking variables write on {path}",
                self.client.variable.create_variable,
                path,
                body,
                namespace=self.ep.namespace or None,
                cas=self._PROBE_CAS,
                read=False,
            )
        except self._nex.VariableConflict:
            return
        raise AssertionError(f"a check-and-set at {self._PROBE_CAS} wrote {path}")  # impossible

    def register(self, job: dict[str, Any], modify_index: int) -> dict[str, Any]:
        """Check-and-set: 0 creates only; N updates only from the state we read."""
        body = {"Job": job, "EnforceIndex": True, "JobModifyIndex": modify_index}
        try:
            return self._call(
                f"registering job {job['ID']}",
                self.client.job.register_job,
                job["ID"],
                body,
                read=False,
            )
        except self._nex.URLNotFoundNomadException as exc:
            raise Rejected(f"Nomad refused job {job['ID']}: {_short(_body(exc))}") from exc

    def stop(self, job_id: str, purge: bool = False) -> dict[str, Any] | None:
        try:
            return self._call(
                f"stopping job {job_id}",
                self.client.job.deregister_job,
                job_id,
                purge=purge,
                read=False,
            )
        except self._nex.URLNotFoundNomadException:
            return None


# What each request needs (nomad/*_endpoint.go), so a refusal names it: Nomad's 403 only says
# "Permission denied".
_NOMAD_NEEDS = (
    ("listing jobs", "list-jobs in namespace {ns}"),
    ("planning job", "submit-job in namespace {ns}"),
    ("registering job", "submit-job in namespace {ns}"),
    ("stopping job", "submit-job in namespace {ns}"),
    ("reading job", "read-job in namespace {ns}"),
    ("listing allocations", "read-job in namespace {ns}"),
    ("waiting on", "read-job in namespace {ns}"),
    ("reading allocation", "read-job in namespace {ns}"),
    ("reading evaluation", "read-job in namespace {ns}"),
    ("reading the deployment", "read-job in namespace {ns}"),
    ("reading deployment", "read-job in namespace {ns}"),
    ("listing nodes", 'node {{ policy = "read" }}'),
    ("reading node", 'node {{ policy = "read" }}'),
    ("reading namespace", "a capability in namespace {ns}"),
    ("listing variables", "variables `list` in namespace {ns}"),
    ("listing variable", "variables `list` on {path} in namespace {ns}"),
    ("reading variable", "variables `read` on {path} in namespace {ns}"),
    ("deleting variable", "variables `destroy` on {path} in namespace {ns}"),
    ("creating variable", "variables `write` on {path} in namespace {ns}"),
    ("listing ACL policies", "a management token"),
    ("reading ACL policy", "a management token"),
    ("writing ACL policy", "a management token"),
    ("deleting ACL policy", "a management token"),
)


def _nomad_need(what: str, ns: str) -> str:
    if re.match(r"reading \d+ (evaluations|deployments)$", what):  # lists by ID
        return f"read-job in namespace {ns}"
    for prefix, need in _NOMAD_NEEDS:
        if what.startswith(prefix):
            return need.format(ns=ns, path=what.rsplit(" ", 1)[-1])
    return ""


def missing_namespace(ns: str) -> ConfigError:
    return ConfigError(
        f'Nomad namespace "{ns}" does not exist',
        hint=f"create it with `nomad namespace apply {ns}`, or choose an existing one "
        "(NOMAD_NAMESPACE, --namespace, or the environment's namespace)",
    )


def _retrying(
    call: Callable[[], Any], translate: Callable[[Exception], NomadgenError | None], read: bool
) -> Any:
    """Run `call`; a client exception leaves as one of ours (`raise ... from`). Reads that
    found the server unavailable are tried again; writes never are (they may have landed)."""
    attempts = 1 + (READ_RETRIES if read else 0)
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            err = translate(exc)
            if err is None:
                raise
            if isinstance(err, Unavailable) and attempt + 1 < attempts:
                time.sleep(0.05 * (attempt + 1))
                continue
            raise err from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _body(exc: BaseException) -> str:
    resp = getattr(exc, "nomad_resp", None)
    text = getattr(resp, "text", None)
    return text if isinstance(text, str) else str(resp if resp is not None else exc)


class ConsulBackend:
    TXN_MAX_OPS = 128  # Consul >= 1.14 (64 before)

    def __init__(self, ep: Endpoint) -> None:
        import consul
        import consul.exceptions as cex
        import requests

        warn_if_unverified(ep)
        self.ep = ep
        self._cex = cex
        self._requests = requests
        self.client = consul.Consul(
            host=ep.host,
            port=ep.port,
            scheme=ep.scheme,
            verify=ep.verify,
            cert=ep.cert,
            connections_timeout=ep.timeout,
        )
        # py-consul lets CONSUL_HTTP_TOKEN override the argument, and its txn.put sends no
        # token at all; a session header covers every request with the token we chose.
        self.client.token = None
        self.client.http.session = http_session()
        self.client.http.session.headers.pop("X-Consul-Token", None)
        if ep.token:
            self.client.http.session.headers["X-Consul-Token"] = ep.token
        self.writes = 0

    def _call(
        self, what: str, fn: Callable[..., Any], *args: Any, read: bool = True, **kwargs: Any
    ) -> Any:
        return _retrying(lambda: fn(*args, **kwargs), lambda exc: self._translate(what, exc), read)

    def _translate(self, what: str, exc: Exception) -> BackendError | None:
        cex, ep = self._cex, self.ep
        if isinstance(exc, cex.ACLPermissionDenied):
            return PermissionDenied(
                f"Consul refused the request ({what}): {_short(str(exc))}",
                hint="check the Consul token (CONSUL_HTTP_TOKEN, --consul-token-file) and its policy",
            )
        if isinstance(exc, cex.NotFound):
            return None  # the caller decides what absence means (a session that expired)
        if isinstance(exc, (cex.BadRequest, cex.ClientError)):
            return Rejected(f"Consul rejected {what}: {_short(str(exc))}")
        if isinstance(exc, cex.ConsulException):
            return Unavailable(
                f"Consul failed {what}: {_short(str(exc))}",
                hint="the server is failing; try again, and check its logs",
            )
        if isinstance(exc, self._requests.Timeout):
            return Unavailable(
                f"Consul at {ep.address} timed out ({what})",
                hint=f"the server did not answer within {ep.timeout:g}s",
            )
        if isinstance(exc, self._requests.RequestException):
            return Unavailable(
                f"cannot reach Consul at {ep.address} ({what})", hint=_hint_for(ep, exc)
            )
        return None

    def ping(self) -> str:
        return self._call("reading the leader", self.client.status.leader)

    def kv_tree(self, prefix: str) -> dict[str, tuple[bytes, int]]:
        _, items = self._call(
            f"reading {prefix}", self.client.kv.get, prefix.rstrip("/") + "/", recurse=True
        )
        return {i["Key"]: (i.get("Value") or b"", i["ModifyIndex"]) for i in items or ()}

    def kv_get(self, key: str) -> tuple[bytes, int] | None:
        _, item = self._call(f"reading {key}", self.client.kv.get, key)
        return None if item is None else (item.get("Value") or b"", item["ModifyIndex"])

    def kv_session(self, key: str) -> str:
        """The session holding a lock on the key ("" when none holds it, or no key)."""
        _, item = self._call(f"reading {key}", self.client.kv.get, key)
        return str((item or {}).get("Session") or "")

    def kv_keys(self, prefix: str) -> tuple[list[str], bool]:
        """The keys under a prefix (`?keys`), without values, and whether Consul left some out:
        it filters list results by the token's ACL rather than refusing them, and says so in
        X-Consul-Results-Filtered-By-ACLs (agent/consul/kvs_endpoint.go ListKeys)."""
        from consul.callback import CB

        as_json = CB.json()

        def read(resp: Any) -> tuple[list[str], bool]:
            filtered = (resp.headers or {}).get("X-Consul-Results-Filtered-By-ACLs") == "true"
            return list(as_json(resp) or ()), filtered

        return self._call(
            f"listing {prefix}",
            self.client.http.get,
            read,
            f"/v1/kv/{prefix}",
            params=[("keys", "true")],
        )

    def txn(self, ops: list[dict[str, Any]]) -> int:
        """Apply KV ops in transactions of at most 128; each one is atomic. Returns how many
        transactions were sent. A lost check-and-set rolls its transaction back (409)."""
        sent = 0
        for start in range(0, len(ops), self.TXN_MAX_OPS):
            chunk = ops[start : start + self.TXN_MAX_OPS]
            payload = []
            for op in chunk:
                kv = dict(op)
                if "Value" in kv:
                    kv["Value"] = base64.b64encode(kv["Value"]).decode()
                payload.append({"KV": kv})
            try:
                self._call("writing interfaces", self.client.txn.put, payload, read=False)
            except Rejected as exc:
                # The client's own text: ours is cut short, which would leave the JSON unparsed.
                text = str(exc.__cause__ or exc)
                is_409 = " 409 " in f" {text} " or "409" in text.split(":", 1)[-1][:6]
                if is_409 and "permission denied" in _txn_errors(text).lower():
                    # An ACL refusal inside a transaction comes back as a 409 with the op's
                    # error (consul agent/consul/txn_endpoint.go preCheck): not a lost race.
                    raise PermissionDenied(
                        f"Consul refused the interface transaction: {_short(_txn_errors(text))}",
                        hint="check the Consul token (CONSUL_HTTP_TOKEN, --consul-token-file): "
                        "it needs key:write on the KV prefix",
                    ) from exc
                if is_409:
                    raise Conflict(
                        "Consul rolled back the interface transaction: a key changed since it was "
                        f"read ({_short(_txn_errors(text))})",
                        hint="another push ran at the same time; run nomadgen plan, then submit again",
                    ) from exc
                raise
            sent += 1
            self.writes += 1
        return sent

    def healthy(self, service: str) -> list[dict[str, Any]]:
        _, nodes = self._call(
            f"reading health of {service}", self.client.health.service, service, passing=True
        )
        return nodes

    def healthy_since(
        self, service: str, index: int = 0, wait: float = 0.0
    ) -> tuple[list[dict[str, Any]], int]:
        """Passing instances, and the X-Consul-Index to wait from next. With an index, a
        blocking query: Consul answers when the service's index passes it or after `wait`
        (plus up to wait/16 of jitter; agent/consul/rpc.go blockingQuery)."""
        kwargs: dict[str, Any] = {}
        if index:
            # py-consul's requests carry the connection timeout: stay inside it
            wait = min(wait, self.ep.timeout * 0.8 * 16 / 17)
            kwargs = {"index": index, "wait": f"{max(1, int(wait * 1000))}ms"}
        got, nodes = self._call(
            f"reading health of {service}",
            self.client.health.service,
            service,
            passing=True,
            **kwargs,
        )
        return nodes, int(got or 0)

    def service_health(self, service: str) -> list[dict[str, Any]]:
        """Every instance of a service with its checks (passing or not), for reporting."""
        _, nodes = self._call(f"reading health of {service}", self.client.health.service, service)
        return nodes

    def register_service(
        self,
        name: str,
        service_id: str,
        address: str,
        port: int,
        tags: list[str],
        meta: dict[str, str],
    ) -> None:
        self._call(
            f"registering service {name}",
            self.client.agent.service.register,
            name,
            service_id=service_id,
            address=address,
            port=port,
            tags=tags,
            meta=meta,
            read=False,
        )
        self.writes += 1

    def deregister_service(self, service_id: str) -> None:
        self._call(
            f"deregistering service {service_id}",
            self.client.agent.service.deregister,
            service_id,
            read=False,
        )
        self.writes += 1

    def may_write_service(self, service_id: str) -> None:
        """PermissionDenied unless the token may write (so deregister) this agent service, asked
        without a change: turning maintenance off passes the same ACL check as a deregister and
        does nothing to a service not in maintenance (agent/agent_endpoint.go
        AgentServiceMaintenance). A service that is gone already is no refusal."""
        try:
            self._call(
                f"checking service:write on {service_id}",
                self.client.agent.service.maintenance,
                service_id,
                False,
            )
        except self._cex.NotFound:
            pass

    def services(self) -> dict[str, dict[str, Any]]:
        return self._call("listing agent services", self.client.agent.services)

    # --- sessions and locks, as `consul lock` uses them -------------------------------------
    def session_create(self, name: str, ttl_s: int, lock_delay_s: int) -> str:
        sid = self._call(
            "creating a lock session",
            self.client.session.create,
            name=name,
            ttl=ttl_s,
            lock_delay=lock_delay_s,
            behavior="release",
            read=False,
        )
        self.writes += 1
        return sid

    def session_renew(self, session: str) -> bool:
        """False when the session is gone (expired or destroyed): the lock is lost."""
        try:
            return (
                self._call(
                    "renewing the lock session", self.client.session.renew, session, read=False
                )
                is not None
            )
        except self._cex.NotFound:
            return False

    def session_destroy(self, session: str) -> None:
        self._call("ending the lock session", self.client.session.destroy, session, read=False)

    def session_info(self, session: str) -> dict[str, Any] | None:
        _, info = self._call("reading a lock session", self.client.session.info, session)
        return info

    def kv_acquire(self, key: str, value: bytes, session: str) -> bool:
        ok = self._call(
            f"acquiring {key}", self.client.kv.put, key, value, acquire=session, read=False
        )
        self.writes += 1
        return bool(ok)

    def kv_release(self, key: str, session: str) -> bool:
        return bool(
            self._call(
                f"releasing {key}", self.client.kv.put, key, b"", release=session, read=False
            )
        )

    def kv_delete_cas(self, key: str, index: int) -> bool:
        ok = self._call(f"deleting {key}", self.client.kv.delete, key, cas=index, read=False)
        self.writes += 1
        return bool(ok)


def _txn_errors(text: str) -> str:
    try:
        body = json.loads(text.split("409", 1)[1].strip())
        return "; ".join(e.get("What", "") for e in body.get("Errors") or ())
    except (ValueError, IndexError, AttributeError):
        return text


def connect(nomad_ep: Endpoint, consul_ep: Endpoint) -> tuple[NomadBackend, ConsulBackend]:
    try:
        return NomadBackend(nomad_ep), ConsulBackend(consul_ep)
    except NomadgenError:
        raise
    except Exception as exc:  # a client refusing its arguments
        raise BackendError(f"cannot set up the clients: {type(exc).__name__}: {exc}") from exc
