"""ACLs for the stand-in: Nomad tokens and policies (with workload identity and job-scoped
policies) and Consul tokens with rules. Not one all-powerful token: each request is checked
against the capability the real server checks.

Nomad (v1.10):
- acl/policy.go: rules (HCL or JSON), namespace `policy` shorthands (read, write, scale, deny)
  expanded to capabilities, `variables { path "..." { capabilities = [...] } }` (`read` implies
  `list`), node/agent/operator/node_pool blocks.
- acl/acl.go: a concrete namespace (or variable path) rule beats globs; among globs the closest
  (smallest character difference) wins; `deny` overrides; management tokens allow everything.
  Workload identities read `nomad/jobs`, `nomad/jobs/<job>`, `nomad/jobs/<job>/<group>` and
  `nomad/jobs/<job>/<group>/<task>` of their own namespace without any policy
  (matchingVariablesCapabilitySet).
- nomad/auth/auth.go: an unknown or invalid token and a denied capability both answer
  `403 Permission denied`; ResolvePoliciesForClaims attaches to a workload the policies whose
  JobACL names its namespace and job (and, when set, group and task), and namespace-wide ones.
- nomad/acl_endpoint.go + command/agent/acl_endpoint.go: /v1/acl/policies, /v1/acl/policy/:name
  (with JobACL), /v1/acl/tokens, /v1/acl/token, /v1/acl/token/:accessor, /v1/acl/token/self;
  all but token/self need a management token, except that a client token lists and reads the
  policies it holds (ListPolicies/GetPolicy).
- Endpoint capabilities: nomad/{job,alloc,eval,deployment,node,namespace,variables}_endpoint.go
  (list-jobs, read-job, submit-job, node:read, variables read/write/destroy/list).

Consul (acl/policy_authorizer.go, acl/errors.go, agent/consul/kvs_endpoint.go kvsPreApply,
agent/consul/txn_endpoint.go, agent/consul/acl_endpoint filters): `key`/`key_prefix`,
`service`/`service_prefix`, `node`/`node_prefix`, `session`/`session_prefix`,
`agent`/`agent_prefix` rules; an exact rule beats the longest matching prefix; `write` grants
read and list, `list` grants read; merged policies take deny, then the highest level.
A request without a token is the anonymous token (deny-all); an unknown token is 403
"ACL not found"; denials read `Permission denied: token with AccessorID '...' lacks permission
'key:write' on "k"`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid

# -- rules (HCL or JSON) ------------------------------------------------------------------------


def _unq(v):
    if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"':
        return json.loads(v)
    if isinstance(v, list):
        return [_unq(x) for x in v]
    if isinstance(v, dict):
        return {_unq(k): _unq(x) for k, x in v.items() if k != "__is_block__"}
    return v


def parse_rules(text: str) -> list[tuple[str, str | None, dict]]:
    """(block type, label or None, body) for every top-level block of an ACL rules document."""
    text = (text or "").strip()
    if not text:
        return []
    if text.startswith("{"):
        doc = json.loads(text)
    else:
        try:
            import hcl2  # dev dependency (python-hcl2)
        except ImportError as exc:  # never reported as a policy error
            raise RuntimeError(
                "HCL rules need python-hcl2 (pip install -e .[dev]); JSON rules work without it"
            ) from exc
        doc = _unq(hcl2.loads(text))
    out: list[tuple[str, str | None, dict]] = []
    for kind, blocks in doc.items():
        for block in blocks if isinstance(blocks, list) else [blocks]:
            if not isinstance(block, dict):
                raise ValueError(f"invalid {kind} block")
            if "policy" in block or "capabilities" in block or not block:
                out.append((kind, None, block))
                continue
            for label, body in block.items():
                for one in body if isinstance(body, list) else [body]:
                    out.append((kind, str(label), one if isinstance(one, dict) else {}))
    return out


def _glob(pattern: str, name: str) -> bool:
    """ryanuber/go-glob: `*` matches any run of characters."""
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(rx, name, re.DOTALL) is not None


# -- Nomad --------------------------------------------------------------------------------------
NS_READ = [
    "list-jobs",
    "parse-job",
    "read-job",
    "csi-list-volume",
    "csi-read-volume",
    "read-job-scaling",
    "list-scaling-policies",
    "read-scaling-policy",
    "host-volume-read",
]
NS_WRITE = NS_READ + [
    "scale-job",
    "submit-job",
    "dispatch-job",
    "read-logs",
    "read-fs",
    "alloc-exec",
    "alloc-lifecycle",
    "csi-mount-volume",
    "csi-write-volume",
    "submit-recommendation",
    "host-volume-create",
]
NS_SHORTHAND = {
    "deny": ["deny"],
    "read": NS_READ,
    "write": NS_WRITE,
    "scale": ["list-scaling-policies", "read-scaling-policy", "read-job-scaling", "scale-job"],
}
NS_CAPS = set(NS_WRITE) | {
    "deny",
    "alloc-node-exec",
    "csi-register-plugin",
    "sentinel-override",
    "host-volume-register",
    "host-volume-write",
    "host-volume-delete",
}
VAR_CAPS = {"list", "read", "write", "destroy", "deny"}
LEVELS = {"deny": 0, "read": 1, "list": 2, "scale": 1, "write": 3}
ANON_ACCESSOR = "anonymous"
PERMISSION_DENIED = "Permission denied"


class NomadACLObject:
    """A compiled Nomad ACL (acl/acl.go NewACL)."""

    def __init__(self, management: bool = False) -> None:
        self.management = management
        self.namespaces: dict[str, set[str]] = {}
        self.variables: dict[str, set[str]] = {}  # "ns\x00path" -> capabilities
        self.node = self.agent = self.operator = self.node_pool = ""

    @classmethod
    def compile(cls, rule_sets: list[str]) -> NomadACLObject:
        acl = cls()
        for rules in rule_sets:
            for kind, label, body in parse_rules(rules):
                acl._add(kind, label, body)
        return acl

    def _add(self, kind: str, label: str | None, body: dict) -> None:
        if kind == "namespace":
            caps = self.namespaces.setdefault(label or "", set())
            for path, pbody in _var_paths(body):
                vcaps = self.variables.setdefault(f"{label}\x00{path}", set())
                vcaps.update(pbody)
            if "deny" in caps:
                return
            new = list(body.get("capabilities") or []) + NS_SHORTHAND.get(
                body.get("policy", ""), []
            )
            if "deny" in new:
                caps.clear()
                caps.add("deny")
            else:
                caps.update(new)
        elif kind in ("node", "agent", "operator"):
            setattr(self, kind, _max_policy(getattr(self, kind), body.get("policy", "")))
        elif kind == "node_pool":
            self.node_pool = _max_policy(self.node_pool, body.get("policy", "read"))

    # acl/acl.go AllowNamespaceOperation / matchingNamespaceCapabilitySet
    def ns_caps(self, ns: str) -> set[str] | None:
        if ns in self.namespaces:
            return self.namespaces[ns]
        return _closest(self.namespaces, ns)

    def allow_ns(self, ns: str, cap: str) -> bool:
        if self.management:
            return True
        if ns == "*":
            return any(cap in c and "deny" not in c for c in self.namespaces.values())
        caps = self.ns_caps(ns)
        return caps is not None and "deny" not in caps and cap in caps

    def allow_namespace(self, ns: str) -> bool:
        """Any capability at all in `ns` (AllowNamespace)."""
        if self.management:
            return True
        caps = self.ns_caps(ns)
        return bool(caps) and "deny" not in caps

    def allow_var(
        self, ns: str, path: str, cap: str, claim: tuple[str, str, str, str] | None = None
    ) -> bool:
        if self.management:
            return True
        key = f"{ns}\x00{path}"
        if key in self.variables and "*" not in key:
            caps = self.variables[key]
        elif claim is not None and ns == claim[0] and path in _workload_paths(claim):
            caps = {"read", "list"}
        else:
            caps = _closest(self.variables, key)
        if caps is None:
            return False
        if "deny" in caps:
            return False
        return cap in caps or (cap == "list" and "read" in caps)

    def allow_node_read(self) -> bool:
        return self.management or self.node in ("read", "write")

    def allow_agent_read(self) -> bool:
        return self.management or self.agent in ("read", "write")


def _var_paths(body: dict):
    for vars_block in _blocks(body.get("variables")):
        for path_block in _blocks(vars_block.get("path")):
            for path, pbody in path_block.items():
                for one in _blocks(pbody):
                    caps = list(one.get("capabilities") or [])
                    bad = [c for c in caps if c not in VAR_CAPS]
                    if bad:
                        raise ValueError(f"Invalid variable capability '{bad[0]}'")
                    yield path, (["deny"] if "deny" in caps else caps)


def _blocks(v) -> list[dict]:
    if v is None:
        return []
    return [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, dict)]


def _workload_paths(claim: tuple[str, str, str, str]) -> set[str]:
    _, job, group, task = claim
    return {
        "nomad/jobs",
        f"nomad/jobs/{job}",
        f"nomad/jobs/{job}/{group}",
        f"nomad/jobs/{job}/{group}/{task}",
    }


def _closest(table: dict[str, set[str]], name: str) -> set[str] | None:
    """findClosestMatchingGlob: the glob with the smallest character difference wins."""
    best, best_diff = None, None
    for pattern in sorted(table):
        if "*" not in pattern or not _glob(pattern, name):
            continue
        diff = len(name) - len(pattern) + pattern.count("*")
        if best_diff is None or diff < best_diff:
            best, best_diff = table[pattern], diff
    return best


def _max_policy(a: str, b: str) -> str:
    if "deny" in (a, b):
        return "deny"
    return a if LEVELS.get(a, -1) >= LEVELS.get(b, -1) else b


class NomadACL:
    """Tokens and policies of one stand-in Nomad. Disabled (everything allowed, as Nomad with
    ACLs off) until `enable(management_secret)`."""

    def __init__(self) -> None:
        self.enabled = False
        self.lock = threading.RLock()
        self.tokens: dict[str, dict] = {}  # secret -> token
        self.policies: dict[str, dict] = {}
        self.index = 1

    def enable(self, management_secret: str) -> dict:
        self.enabled = True
        return self.create_token(
            name="Bootstrap Token", type="management", secret=management_secret
        )

    # -- objects ------------------------------------------------------------------------------
    def create_token(
        self, *, policies=(), name: str = "", type: str = "client", secret: str | None = None
    ) -> dict:
        """A token with these policy names (Type "client") or a management token."""
        # nomad/structs/acl.go ACLToken.Validate; the endpoint wraps it as "token 0 invalid".
        if type not in ("client", "management"):
            raise ValueError("token 0 invalid: token type must be client or management")
        if type == "client" and not policies:
            raise ValueError("token 0 invalid: client token missing policies or roles")
        with self.lock:
            self.index += 1
            now = time.time()
            token = {
                "AccessorID": str(uuid.uuid4()),
                "SecretID": secret or str(uuid.uuid4()),
                "Name": name,
                "Type": type,
                "Policies": list(policies) or None,
                "Roles": None,
                "Global": False,
                "ExpirationTime": None,
                "CreateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                "CreateIndex": self.index,
                "ModifyIndex": self.index,
            }
            self.tokens[token["SecretID"]] = token
            return dict(token)

    def apply_policy(
        self, name: str, rules: str, *, description: str = "", job_acl: dict | None = None
    ) -> dict:
        """`nomad acl policy apply [-namespace NS -job J [-group G [-task T]]] name rules`."""
        problems = []
        if not re.fullmatch(r"[a-zA-Z0-9-]{1,128}", name or ""):
            problems.append(f"invalid name '{name}'")
        try:
            compiled = parse_rules(rules)
            NomadACLObject.compile([rules])
            if not compiled:
                problems.append(f"failed to parse rules: Invalid policy: {rules}")
        except (ValueError, TypeError) as exc:
            problems.append(f"failed to parse rules: Failed to parse ACL Policy: {exc}")
        except RuntimeError:
            raise
        except Exception as exc:  # hcl2's own parse errors
            problems.append(f"failed to parse rules: Failed to parse ACL Policy: {exc}")
        job = {k: (job_acl or {}).get(k) or "" for k in ("Namespace", "JobID", "Group", "Task")}
        if job_acl:
            if job["JobID"] and not job["Namespace"]:
                problems.append("namespace must be set to set job ID")
            if job["Group"] and not job["JobID"]:
                problems.append("job ID must be set to set group")
            if job["Task"] and not job["Group"]:
                problems.append("group must be set to set task")
        if problems:
            from .nomad import NomadError, multierror

            raise NomadError(400, "policy 0 invalid: " + multierror(*problems))  # acl_endpoint.go
        with self.lock:
            self.index += 1
            old = self.policies.get(name)
            policy = {
                "Name": name,
                "Description": description,
                "Rules": rules,
                "JobACL": job if job_acl else None,
                "CreateIndex": old["CreateIndex"] if old else self.index,
                "ModifyIndex": self.index,
            }
            self.policies[name] = policy
            return dict(policy)

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, secret: str) -> NomadACLObject | None:
        """The ACL of a request's token; None when ACLs are off. NomadError 403 if unknown."""
        if not self.enabled:
            return None
        with self.lock:
            if not secret:
                anon = self.policies.get("anonymous")
                return NomadACLObject.compile([anon["Rules"]] if anon else [])
            token = self.tokens.get(secret)
            if token is None:
                from .nomad import NomadError

                raise NomadError(403, PERMISSION_DENIED)
            return self._for_token(token)

    def _for_token(self, token: dict) -> NomadACLObject:
        if token["Type"] == "management":
            return NomadACLObject(management=True)
        rules = [self.policies[p]["Rules"] for p in token["Policies"] or () if p in self.policies]
        return NomadACLObject.compile(rules)

    def for_workload(
        self, namespace: str, job_id: str, group: str, task: str
    ) -> NomadACLObject | None:
        """The ACL of a task's workload identity (ResolvePoliciesForClaims); None if ACLs off."""
        if not self.enabled:
            return None
        rules = []
        with self.lock:
            for p in self.policies.values():
                j = p.get("JobACL")
                if not j or j["Namespace"] != namespace:
                    continue
                if j["JobID"] == "" or (
                    j["JobID"] == job_id
                    and (j["Group"] == "" or (j["Group"] == group and j["Task"] in ("", task)))
                ):
                    rules.append(p["Rules"])
        return NomadACLObject.compile(rules)


def workload_may_read_var(state, alloc, task: str, path: str, namespace: str = "") -> bool:
    """Whether the template of `task` in `alloc` may read variable `path` (of `namespace`,
    the task's own by default)."""
    acl = state.acl.for_workload(alloc.namespace, alloc.job_id, alloc.group, task)
    if acl is None:
        return True
    return acl.allow_var(
        namespace or alloc.namespace,
        path,
        "read",
        claim=(alloc.namespace, alloc.job_id, alloc.group, task),
    )


# -- Nomad HTTP: which capability each route needs ---------------------------------------------
def check(
    state, acl: NomadACLObject, method: str, parts: list[str], ns: str | None, body: bytes
) -> None:
    """Raise NomadError 403 unless `acl` may make this request (before the route runs)."""
    from .nomad import NomadError

    if acl is None or acl.management:
        return
    head, rest = parts[0], parts[1:]
    rns = ns or "default"

    def need(ok: bool) -> None:
        if not ok:
            raise NomadError(403, PERMISSION_DENIED)

    if head in ("status", "regions"):
        return
    if head == "acl":
        return  # the ACL routes check for themselves
    if head == "agent":
        return need(acl.allow_agent_read())
    if head == "jobs" and not rest:
        if method == "GET":
            return need(acl.allow_ns(rns, "list-jobs"))
        return need(
            _register_ns_missing(state, rns, body)
            or acl.allow_ns(_register_ns(rns if ns else None, body), "submit-job")
        )
    if head == "job" and rest:
        sub = rest[1:]
        if method == "GET":
            return need(acl.allow_ns(rns, "read-job"))
        if not sub or sub[0] in ("plan", "evaluate", "revert", "stable", "scale", "dispatch"):
            if not sub and method in ("PUT", "POST"):
                return need(
                    _register_ns_missing(state, rns, body)
                    or acl.allow_ns(_register_ns(rns if ns else None, body), "submit-job")
                )
            if sub and sub[0] == "plan":
                return need(
                    _register_ns_missing(state, rns, body)
                    or acl.allow_ns(_register_ns(rns if ns else None, body), "submit-job")
                )
            return need(acl.allow_ns(rns, "submit-job"))
        return need(acl.allow_ns(rns, "read-job"))
    if head in ("allocations", "evaluations", "deployments") and not rest:
        return need(acl.allow_ns(rns, "read-job"))
    if head in ("allocation", "evaluation", "deployment") and rest:
        obj_ns = _object_ns(state, head, rest)
        return need(obj_ns is None or acl.allow_ns(obj_ns, "read-job"))
    if head in ("nodes", "node"):
        if rest == ["pools"]:
            return need(acl.node_pool in ("read", "write"))
        return need(acl.allow_node_read())
    if head == "namespaces":
        return  # filtered afterwards
    if head == "namespace":
        if method == "GET" and rest:
            return need(acl.allow_namespace(rest[0]))
        return need(False)  # writes need a management token
    if head == "vars":
        return  # filtered afterwards by `list`, never refused (nomad/variables_endpoint.go List)
    if head == "var" and rest:
        path = "/".join(rest)
        if method == "GET":
            return need(acl.allow_var(rns, path, "read"))
        if method == "DELETE":
            return need(acl.allow_var(rns, path, "destroy"))
        try:
            vns = (json.loads(body or b"{}") or {}).get("Namespace") or rns
        except ValueError:
            vns = rns
        return need(acl.allow_var(vns, path, "write"))
    if head == "validate":
        return need(acl.allow_ns(rns, "read-job"))
    need(False)


def _register_ns(query_ns: str | None, body: bytes) -> str:
    """namespaceForJob (command/agent/job_endpoint.go): ?namespace=, body, then the job's."""
    if query_ns:
        return query_ns
    try:
        data = json.loads(body or b"{}") or {}
    except ValueError:
        return "default"
    job = data.get("Job") if isinstance(data.get("Job"), dict) else {}
    return data.get("Namespace") or job.get("Namespace") or "default"


def _register_ns_missing(state, rns: str, body: bytes) -> bool:
    """Admission (the nonexistent-namespace check) runs before the submit-job check."""
    try:
        data = json.loads(body or b"{}") or {}
    except ValueError:
        return False
    job = data.get("Job") if isinstance(data.get("Job"), dict) else {}
    ns = data.get("Namespace") or job.get("Namespace") or rns
    return ns not in state.namespaces


def _object_ns(state, head: str, rest: list[str]) -> str | None:
    with state.lock:
        if head == "allocation":
            a = state.allocs.get(rest[0])
            return a.namespace if a else None
        if head == "evaluation":
            e = state.evals.get(rest[0])
            return e["Namespace"] if e else None
        dep_id = rest[1] if rest[0] == "allocations" and len(rest) > 1 else rest[0]
        d = state.deployments.get(dep_id)
        return d["Namespace"] if d else None


def filter_payload(acl: NomadACLObject | None, parts: list[str], ns: str | None, payload):
    """List endpoints filter what the token may see instead of refusing."""
    if acl is None or acl.management or not isinstance(payload, list):
        return payload
    head, rest = parts[0], parts[1:]
    if head == "namespaces" and not rest:
        return [n for n in payload if acl.allow_namespace(n["Name"])]
    if head == "vars" and not rest:
        return [v for v in payload if acl.allow_var(v["Namespace"], v["Path"], "list")]
    if ns == "*" and head in ("jobs", "allocations", "evaluations", "deployments") and not rest:
        cap = "list-jobs" if head == "jobs" else "read-job"
        return [x for x in payload if acl.allow_ns(x.get("Namespace", "default"), cap)]
    return payload


def route(
    state, acl: NomadACLObject | None, method: str, rest: list[str], secret: str, body: bytes
):
    """/v1/acl/...: (status, payload, index) or None for a route not served here."""
    from .nomad import NomadError

    store: NomadACL = state.acl
    if not store.enabled:
        raise NomadError(400, "ACL support disabled")
    if rest == ["token", "self"] and method == "GET":
        token = store.tokens.get(secret)
        if token is None:
            raise NomadError(403, PERMISSION_DENIED)
        return 200, dict(token), store.index
    if acl is not None and not acl.management and method == "GET":
        # ListPolicies/GetPolicy (nomad/acl_endpoint.go): a client token sees the policies it
        # holds (and anyone `anonymous`); everything else needs a management token.
        token = store.tokens.get(secret)
        held = set((token or {}).get("Policies") or ()) if secret else {"anonymous"}
        if rest == ["policies"]:
            return (
                200,
                [_policy_stub(p) for n, p in sorted(store.policies.items()) if n in held],
                store.index,
            )
        if len(rest) == 2 and rest[0] == "policy" and (rest[1] in held or rest[1] == "anonymous"):
            if rest[1] not in store.policies:
                raise NomadError(404, "ACL policy not found")
            return 200, dict(store.policies[rest[1]]), store.index
    if acl is None or not acl.management:
        raise NomadError(403, PERMISSION_DENIED)
    data = {}
    if body:
        try:
            data = json.loads(body)
        except ValueError as exc:
            raise NomadError(400, f"Failed to decode request body: {exc}") from exc
    if rest == ["policies"] and method == "GET":
        return (
            200,
            [_policy_stub(p) for _, p in sorted(store.policies.items())],
            store.index,
        )
    if len(rest) == 2 and rest[0] == "policy":
        name = rest[1]
        if method == "GET":
            if name not in store.policies:
                raise NomadError(404, "ACL policy not found")
            return 200, dict(store.policies[name]), store.index
        if method in ("PUT", "POST"):
            if data.get("Name") and data["Name"] != name:
                raise NomadError(400, "ACL policy name does not match request path")
            store.apply_policy(
                name,
                data.get("Rules") or "",
                description=data.get("Description") or "",
                job_acl=data.get("JobACL"),
            )
            return 200, None, store.index
        if method == "DELETE":
            store.policies.pop(name, None)
            return 200, None, store.index
    if rest == ["tokens"] and method == "GET":
        return (
            200,
            [{k: t[k] for k in t if k != "SecretID"} for t in store.tokens.values()],
            store.index,
        )
    if rest == ["token"] and method in ("PUT", "POST"):
        try:
            token = store.create_token(
                policies=data.get("Policies") or (),
                name=data.get("Name") or "",
                type=data.get("Type") or "client",
            )
        except ValueError as exc:
            raise NomadError(400, str(exc)) from exc
        return 200, token, store.index
    if len(rest) == 2 and rest[0] == "token":
        for t in store.tokens.values():
            if t["AccessorID"] == rest[1]:
                if method == "GET":
                    return 200, dict(t), store.index
                if method == "DELETE":
                    del store.tokens[t["SecretID"]]
                    return 200, None, store.index
        raise NomadError(404, "ACL token not found")
    return None


def _policy_stub(p: dict) -> dict:
    return {k: p[k] for k in ("Name", "Description", "JobACL", "CreateIndex", "ModifyIndex")}


# -- Consul -------------------------------------------------------------------------------------
CONSUL_ANON_ACCESSOR = "00000000-0000-0000-0000-000000000002"
CONSUL_RESOURCES = ("key", "service", "node", "session", "agent", "event", "query")
_CONSUL_LEVEL = {"deny": 0, "read": 1, "list": 2, "write": 3}


class ConsulAuthz:
    """One Consul token's rules (acl/policy_authorizer.go)."""

    def __init__(self, accessor: str, management: bool = False) -> None:
        self.accessor = accessor
        self.management = management
        self.exact: dict[str, dict[str, str]] = {r: {} for r in CONSUL_RESOURCES}
        self.prefix: dict[str, dict[str, str]] = {r: {} for r in CONSUL_RESOURCES}
        self.globals: dict[str, str] = {}  # operator, acl, keyring, mesh

    def add_rules(self, rules: str) -> None:
        for kind, label, body in parse_rules(rules):
            level = body.get("policy") or body.get("Policy") or ""
            if level not in _CONSUL_LEVEL:
                raise ValueError(f"Invalid {kind} policy: {level!r}")
            base = kind[:-7] if kind.endswith("_prefix") else kind
            if base in CONSUL_RESOURCES and label is not None:
                table = self.prefix if kind.endswith("_prefix") else self.exact
                old = table[base].get(label)
                table[base][label] = _merge(old, level)
            elif label is None:
                self.globals[kind] = _merge(self.globals.get(kind), level)
            else:
                raise ValueError(f"unknown rule {kind}")

    def level(self, resource: str, name: str) -> str:
        if self.management:
            return "write"
        if name in self.exact.get(resource, {}):
            return self.exact[resource][name]
        best = None
        for prefix, level in self.prefix.get(resource, {}).items():
            if name.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, level)
        return best[1] if best else "deny"  # default policy deny

    def allows(self, permission: str, name: str | None = None) -> bool:
        resource, _, access = permission.partition(":")
        if self.management:
            return True
        if resource not in CONSUL_RESOURCES:
            have = self.globals.get(resource, "deny")
        else:
            have = self.level(resource, name or "")
        return _CONSUL_LEVEL[have] >= _CONSUL_LEVEL.get(access, 3) and have != "deny"

    def key_write_prefix(self, prefix: str) -> bool:
        """KeyWritePrefix: write on the prefix and no narrower rule below it taking it away."""
        if self.management:
            return True
        if self.level("key", prefix) != "write":
            return False
        for table in (self.exact["key"], self.prefix["key"]):
            for name, level in table.items():
                if name.startswith(prefix) and level != "write":
                    return False
        return True

    def denied(self, permission: str, name: str | None = None) -> str:
        who = (
            "anonymous token"
            if self.accessor == CONSUL_ANON_ACCESSOR
            else f"token with AccessorID '{self.accessor}'"
        )
        text = f"Permission denied: {who} lacks permission '{permission}'"
        if name is not None:
            text += f" on {json.dumps(name)}"
        if self.accessor == CONSUL_ANON_ACCESSOR:
            text += (
                ". The anonymous token is used implicitly when a request does not specify a token."
            )
        return text

    def sees(self, item) -> bool:
        """Whether a list row survives Consul's ACL filter for this token."""
        if self.management:
            return True
        if isinstance(item, str):
            return self.allows("key:read", item)
        if not isinstance(item, dict):
            return False
        if "Key" in item and ("Flags" in item or "LockIndex" in item):
            return self.allows("key:read", item["Key"])
        if isinstance(item.get("Service"), dict) and isinstance(item.get("Node"), dict):
            return self.allows("node:read", item["Node"].get("Node", "")) and self.allows(
                "service:read", item["Service"].get("Service", "")
            )
        if "CheckID" in item:
            ok = self.allows("node:read", item.get("Node", ""))
            if item.get("ServiceName"):
                ok = ok and self.allows("service:read", item["ServiceName"])
            return ok
        if "ServiceName" in item:
            return self.allows("service:read", item["ServiceName"]) and self.allows(
                "node:read", item.get("Node", "")
            )
        if isinstance(item.get("Service"), str):
            return self.allows("service:read", item["Service"])
        if "Node" in item and "Address" in item:
            return self.allows("node:read", item["Node"])
        return False


def _merge(old: str | None, new: str) -> str:
    if old is None:
        return new
    if "deny" in (old, new):
        return "deny"
    return old if _CONSUL_LEVEL[old] >= _CONSUL_LEVEL[new] else new


class ConsulACL:
    """Consul tokens. The tokens given at start are global-management (as before); tests add
    tokens with rules through `add_token(rules)`."""

    def __init__(self, management_secrets=()) -> None:
        self.lock = threading.Lock()
        self.tokens: dict[str, ConsulAuthz] = {}
        for secret in management_secrets:
            self.tokens[secret] = ConsulAuthz(str(uuid.uuid4()), management=True)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def add_token(self, rules: str, secret: str | None = None) -> str:
        """A token with these rules (HCL or JSON); returns its secret."""
        authz = ConsulAuthz(str(uuid.uuid4()))
        authz.add_rules(rules)
        secret = secret or str(uuid.uuid4())
        with self.lock:
            self.tokens[secret] = authz
        return secret

    def resolve(self, secret: str) -> ConsulAuthz | None:
        """None when ACLs are off; the anonymous (deny-all) authorizer without a token;
        KeyError for an unknown token."""
        if not self.enabled:
            return None
        if not secret:
            return ConsulAuthz(CONSUL_ANON_ACCESSOR)
        with self.lock:
            return self.tokens[secret]
