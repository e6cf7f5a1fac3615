"""Stand-in namespaces, variables and ACLs, driven through python-nomad, py-consul and requests.
Each behaviour follows the Nomad or Consul source file named in dev/standin/ (see dev/README.md)."""

from __future__ import annotations

import nomad
import nomad.api.exceptions as nex
import pytest
import requests

from tests.standin.test_standin_nomad import make_job


@pytest.fixture
def standin(cluster):
    """These tests read the stand-in's own state or leave objects behind: stand-in only."""
    if cluster.standin is None:
        pytest.skip("needs the stand-in's levers")
    return cluster.standin


def _client(s, token=None, namespace=None):
    return nomad.Nomad(
        host="127.0.0.1", port=s.nomad_port, timeout=5, token=token, namespace=namespace
    )


# -- namespaces ---------------------------------------------------------------------------------
def test_job_in_a_missing_namespace_is_refused_with_nomads_text(standin):
    client = _client(standin)
    job = make_job("web", count=1) | {"Namespace": "team-a"}
    with pytest.raises(nex.BaseNomadException) as exc:
        client.job.register_job("web", {"Job": job})
    assert exc.value.nomad_resp.status_code == 500
    assert exc.value.nomad_resp.text == (
        '1 error occurred:\n\t* job "web" is in nonexistent namespace "team-a"\n\n'
    )
    client.namespace.create_namespace({"Name": "team-a", "Description": "A"})
    assert [n["Name"] for n in client.namespaces.get_namespaces()] == ["default", "team-a"]
    client.job.register_job("web", {"Job": job})
    # Lists without ?namespace= show the default namespace only; `*` shows every namespace.
    assert client.jobs.get_jobs() == []
    assert [j["ID"] for j in _client(standin, namespace="team-a").jobs.get_jobs()] == ["web"]
    assert [j["Namespace"] for j in client.jobs.get_jobs(namespace="*")] == ["team-a"]
    with pytest.raises(nex.URLNotFoundNomadException):
        client.job.get_job("web")
    assert client.job.get_job("web", namespace="team-a")["Namespace"] == "team-a"
    # A namespace with a live job cannot go.
    r = requests.delete(f"{standin.nomad_addr}/v1/namespace/team-a", timeout=5)
    assert r.status_code == 500 and 'namespace "team-a" has non-terminal jobs' in r.text


def test_namespace_names_and_lookups(standin):
    base = standin.nomad_addr
    r = requests.put(f"{base}/v1/namespace/bad_name", json={"Name": "bad_name"}, timeout=5)
    assert r.status_code == 500 and 'invalid name "bad_name"' in r.text
    r = requests.put(f"{base}/v1/namespace/a", json={"Name": "b"}, timeout=5)
    assert (r.status_code, r.text) == (400, "Namespace name does not match request path")
    r = requests.get(f"{base}/v1/namespace/nope", timeout=5)
    assert (r.status_code, r.text) == (404, "Namespace not found")
    r = requests.delete(f"{base}/v1/namespace/default", timeout=5)
    assert (r.status_code, r.text) == (500, "can not delete default namespace")


# -- variables ----------------------------------------------------------------------------------
# Nomad's texts (nomad/structs/variables.go ValidatePath, v1.10.5; 2.0 also admits nomad/sentinel).
_UNDER_NOMAD = (
    'only paths at "nomad/jobs" or "nomad/job-templates" and below are valid paths '
    'under the top-level "nomad" directory'
)
_TEMPLATES = (
    '"nomad/job-templates" is a reserved directory path, but you may write variables at the '
    'level below it, for example, "nomad/job-templates/template-name"'
)


@pytest.mark.parametrize(
    "path, error",
    [
        ("nomad/jobs", ""),
        ("nomad/jobs/web/app/task", ""),
        ("nomad/job-templates/x", ""),
        ("app/secret", ""),
        (
            "nomad",
            '"nomad" is a reserved top-level directory path, but you may write variables to '
            '"nomad/jobs", "nomad/job-templates", or below',
        ),
        ("nomad/job-templates", _TEMPLATES),
        ("nomad/job-templates/x/y", _TEMPLATES),
        ("nomad/other", _UNDER_NOMAD),
        ("nomad/sentinel", _UNDER_NOMAD),
        ("bad path", 'invalid path "bad path"'),
    ],
)
def test_variable_paths_under_nomad_are_reserved(standin, path, error):
    r = requests.put(f"{standin.nomad_addr}/v1/var/{path}", json={"Items": {"a": "b"}}, timeout=5)
    assert (r.status_code, r.text if error else "") == ((400, error) if error else (200, ""))


def test_variable_namespace_comes_from_the_body(standin):
    """python-nomad sends no ?namespace= on /v1/var: the body's Namespace is what counts on
    writes, and reads without ?namespace= look in "default" (nomad/variables_endpoint.go)."""
    client = _client(standin, namespace="team-b")
    client.variable.create_variable("app/db", {"Namespace": "team-b", "Items": {"pw": "x"}})
    with pytest.raises(nex.URLNotFoundNomadException):
        client.variable.get_variable("app/db")  # python-nomad: no ?namespace= here
    assert client.variable.get_variable("app/db", namespace="team-b")["Items"] == {"pw": "x"}
    assert [v["Namespace"] for v in client.variables.get_variables(namespace="*")] == ["team-b"]
    # Nomad CE does not check that a variable's namespace exists (hashicorp/nomad#15379).
    assert "team-b" not in [n["Name"] for n in client.namespaces.get_namespaces()]


# -- task environment and network model ---------------------------------------------------------
def _running(s, client, job_id, n=1):
    def ready():
        allocs = [
            a
            for a in client.job.get_allocations(job_id)
            if a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"
        ]
        return allocs if len(allocs) == n else None

    return s.wait_for(ready)


def _sidecar_job(job_id: str, mode: str = "host") -> dict:
    job = make_job(job_id, count=1)
    group = job["TaskGroups"][0]
    group["Networks"] = [
        {
            "Mode": mode,
            "DynamicPorts": [{"Label": "http", "To": 8080}, {"Label": "memcache", "To": 11211}],
        }
    ]
    group["Tasks"].append(
        {
            "Name": "cache",
            "Driver": "docker",
            "Lifecycle": {"Hook": "prestart", "Sidecar": True},
            "Config": {"image": "memcached:1.6", "ports": ["memcache"]},
            "Resources": {"CPU": 100, "MemoryMB": 64},
        }
    )
    return job


def test_port_variables_follow_client_taskenv(standin):
    s = standin
    client = _client(s)
    client.job.register_job("web", {"Job": make_job("web", count=1)})
    (alloc,) = _running(s, client, "web")
    env = s.task_view(alloc["ID"], "app")["Env"]
    ip = env["NOMAD_IP_http"]
    host_port = env["NOMAD_HOST_PORT_http"]
    assert ip == s.nomad.node_by_name(alloc["NodeName"])["Address"]
    assert env["NOMAD_PORT_http"] == env["NOMAD_ALLOC_PORT_http"] == "8080"  # the `to` port
    assert int(host_port) != 8080
    assert env["NOMAD_ADDR_http"] == env["NOMAD_HOST_ADDR_http"] == f"{ip}:{host_port}"
    hit = s.reach(env["NOMAD_ADDR_http"])
    assert (hit.alloc_id, hit.task, hit.label, hit.port) == (alloc["ID"], "app", "http", 8080)
    # Host IP with the container's port: under Docker port mapping that reaches nothing.
    assert s.reach(f"{env['NOMAD_IP_http']}:{env['NOMAD_PORT_http']}") is None
    # The same questions over the control API (a stand-in in another process).
    r = requests.get(
        f"{s.nomad_addr}/_standin/reach", params={"address": env["NOMAD_ADDR_http"]}, timeout=5
    ).json()
    assert r["reaches"]["alloc_id"] == alloc["ID"] and r["reaches"]["task"] == "app"
    r = requests.get(f"{s.nomad_addr}/_standin/task/{alloc['ID']}/app", timeout=5).json()
    assert r["Env"]["NOMAD_ADDR_http"] == env["NOMAD_ADDR_http"]


def test_stopped_allocation_reaches_nothing(standin):
    s = standin
    client = _client(s)
    client.job.register_job("web", {"Job": make_job("web", count=1)})
    (alloc,) = _running(s, client, "web")
    addr = s.task_view(alloc["ID"], "app")["Env"]["NOMAD_ADDR_http"]
    assert s.reach(addr) is not None
    client.job.deregister_job("web")
    s.wait_for(lambda: s.reach(addr) is None)


@pytest.mark.parametrize("mode", ["host", "bridge"])
def test_sidecar_in_the_same_group(standin, mode):
    s = standin
    client = _client(s)
    job = _sidecar_job("shop", mode)
    if mode == "bridge":  # docker `ports` are not needed in bridge mode
        del job["TaskGroups"][0]["Tasks"][0]["Config"]["ports"]
    client.job.register_job("shop", {"Job": job})
    (alloc,) = _running(s, client, "shop")
    s.wait_for(lambda: s.task_view(alloc["ID"], "cache")["State"] == "running")
    env = s.task_view(alloc["ID"], "app")["Env"]
    app = (alloc["ID"], "app")
    hit = s.reach(env["NOMAD_ADDR_memcache"], source=app)
    assert (hit.task, hit.label, hit.port) == ("cache", "memcache", 11211)
    assert s.reach(f"{env['NOMAD_IP_memcache']}:{env['NOMAD_PORT_memcache']}", source=app) is None
    local = s.reach("127.0.0.1:11211", source=app)
    if mode == "bridge":  # one network namespace per allocation, shared by its tasks
        assert local is not None and local.task == "cache"
    else:  # Docker gives each container its own namespace
        assert local is None
    assert s.reach(env["NOMAD_ADDR_http"]).task == "app"
    assert any(m["alloc_id"] == alloc["ID"] and m["label"] == "memcache" for m in s.network_map())


def test_rendered_templates_and_environment(standin):
    s = standin
    client = _client(s)
    client.job.register_job("web", {"Job": make_job("web", count=1)})
    (web,) = _running(s, client, "web")
    s.nomad.var_put("nomad/jobs/shop", {"pw": 'se"cret'})
    job = make_job("shop", count=1)
    job["TaskGroups"][0]["Services"] = None
    job["TaskGroups"][0]["Tasks"][0]["Templates"] = [
        {
            "EmbeddedTmpl": (
                '{{- with service "web-api~_agent" }}{{ with index . 0 }}\n'
                "WEB_ADDR={{ .Address }}:{{ .Port }}\n{{- end }}{{ end }}\n"
                '{{ with nomadVar "nomad/jobs/shop" }}PW={{ .pw | toJSON }}{{ end }}\n'
                'LITERAL={{ "{{" }}x\n'
            ),
            "DestPath": "local/app.env",
            "Envvars": True,
            "ChangeMode": "restart",
        }
    ]
    client.job.register_job("shop", {"Job": job})
    (shop,) = _running(s, client, "shop")
    # Rendered from live data: wait until web's instance is healthy in Consul.
    view = s.wait_for(lambda: (v := s.task_view(shop["ID"], "app"))["Env"].get("WEB_ADDR") and v)
    (tmpl,) = view["Templates"]
    assert tmpl["Rendered"].splitlines() == [
        "",
        f"WEB_ADDR={s.task_view(web['ID'], 'app')['Env']['NOMAD_ADDR_http']}",
        'PW="se\\"cret"',
        "LITERAL={{x",
    ]
    assert view["Env"]["PW"] == 'se"cret' and view["Env"]["MODE"] == "one"
    assert s.reach(view["Env"]["WEB_ADDR"]).alloc_id == web["ID"]


# -- Nomad ACLs ---------------------------------------------------------------------------------
MGMT = "00000000-1111-2222-3333-444444444444"


def test_nomad_tokens_get_the_capabilities_of_their_policies(standin_factory):
    s = standin_factory(nomad_acl_token=MGMT)
    reader = _client(s, s.nomad_token(rules={"read": 'namespace "default" { policy = "read" }'}))
    submitter = _client(
        s,
        s.nomad_token(
            rules={
                "submit": """
        namespace "default" { capabilities = ["submit-job", "read-job", "list-jobs"] }
        node { policy = "read" }"""
            }
        ),
    )
    job = make_job("web", count=1)
    with pytest.raises(nex.URLNotAuthorizedNomadException) as exc:
        reader.job.register_job("web", {"Job": job})
    assert (exc.value.nomad_resp.status_code, exc.value.nomad_resp.text) == (
        403,
        "Permission denied",
    )
    with pytest.raises(nex.URLNotAuthorizedNomadException):
        reader.job.plan_job("web", {"Job": job})
    with pytest.raises(nex.URLNotAuthorizedNomadException):
        reader.nodes.get_nodes()  # no node policy
    submitter.job.register_job("web", {"Job": job})
    assert [j["ID"] for j in reader.jobs.get_jobs()] == ["web"]
    assert reader.job.get_job("web")["ID"] == "web"
    assert len(submitter.nodes.get_nodes()) == 3
    with pytest.raises(nex.URLNotAuthorizedNomadException):
        submitter.namespace.create_namespace({"Name": "other"})  # management only
    with pytest.raises(nex.URLNotAuthorizedNomadException):
        _client(s).jobs.get_jobs()  # anonymous
    with pytest.raises(nex.URLNotAuthorizedNomadException):
        _client(s, "11111111-2222-3333-4444-555555555555").jobs.get_jobs()  # unknown
    assert _client(s, MGMT).jobs.get_jobs()[0]["ID"] == "web"


def test_nomad_variable_path_rules(standin_factory):
    s = standin_factory(nomad_acl_token=MGMT)
    mgmt = _client(s, MGMT)
    for path in ("app/a", "app/b", "other/c"):
        mgmt.variable.create_variable(path, {"Items": {"k": path}})
    token = s.nomad_token(
        rules={
            "vars": """namespace "default" { variables {
        path "app/*" { capabilities = ["read"] }
        path "app/b" { capabilities = ["deny"] } } }"""
        }
    )
    c = _client(s, token)
    assert c.variable.get_variable("app/a")["Items"] == {"k": "app/a"}
    for denied in (
        lambda: c.variable.get_variable("app/b"),  # concrete deny beats the glob
        lambda: c.variable.get_variable("other/c"),
        lambda: c.variable.create_variable("app/a", {"Items": {"k": "x"}}),
    ):
        with pytest.raises(nex.URLNotAuthorizedNomadException):
            denied()
    assert [v["Path"] for v in c.variables.get_variables()] == ["app/a"]  # list is filtered


def test_acl_policy_and_token_endpoints(standin_factory):
    s = standin_factory(nomad_acl_token=MGMT)
    base, hdr = s.nomad_addr, {"X-Nomad-Token": MGMT}
    r = requests.put(
        f"{base}/v1/acl/policy/ro",
        headers=hdr,
        timeout=5,
        json={"Name": "ro", "Rules": 'namespace "default" { policy = "read" }'},
    )
    assert r.status_code == 200
    r = requests.put(
        f"{base}/v1/acl/policy/bad",
        headers=hdr,
        timeout=5,
        json={
            "Name": "bad",
            "Rules": 'namespace "default" { policy = "read" }',
            "JobACL": {"Group": "g"},
        },
    )
    assert r.status_code == 400 and "job ID must be set to set group" in r.text
    token = requests.put(
        f"{base}/v1/acl/token",
        headers=hdr,
        timeout=5,
        json={"Name": "t", "Type": "client", "Policies": ["ro"]},
    ).json()
    me = requests.get(
        f"{base}/v1/acl/token/self", timeout=5, headers={"X-Nomad-Token": token["SecretID"]}
    ).json()
    assert me["Policies"] == ["ro"] and me["AccessorID"] == token["AccessorID"]
    # A client token lists and reads only the policies it holds (nomad/acl_endpoint.go
    # ListPolicies, GetPolicy); writes need a management token.
    requests.put(
        f"{base}/v1/acl/policy/other",
        headers=hdr,
        timeout=5,
        json={"Name": "other", "Rules": 'namespace "x" { policy = "read" }'},
    ).raise_for_status()
    client = {"X-Nomad-Token": token["SecretID"]}
    r = requests.get(f"{base}/v1/acl/policies", timeout=5, headers=client)
    assert r.status_code == 200 and [p["Name"] for p in r.json()] == ["ro"]
    assert requests.get(f"{base}/v1/acl/policy/ro", timeout=5, headers=client).status_code == 200
    r = requests.get(f"{base}/v1/acl/policy/other", timeout=5, headers=client)
    assert (r.status_code, r.text) == (403, "Permission denied")
    r = requests.put(
        f"{base}/v1/acl/policy/ro",
        timeout=5,
        headers=client,
        json={"Name": "ro", "Rules": 'namespace "default" { policy = "write" }'},
    )
    assert (r.status_code, r.text) == (403, "Permission denied")


def _reader_job(job_id: str, path: str) -> dict:
    job = make_job(job_id, count=1)
    job["TaskGroups"][0]["Services"] = None
    job["TaskGroups"][0]["Tasks"][0]["Templates"] = [
        {
            "EmbeddedTmpl": '{{ with nomadVar "%s" }}DB_PASSWORD={{ .password }}{{ end }}\n' % path,
            "DestPath": "secrets/db.env",
            "Envvars": True,
            "ChangeMode": "restart",
        }
    ]
    return job


def test_workload_identity_reads_its_own_job_variables_only(standin_factory):
    s = standin_factory(nomad_acl_token=MGMT)
    mgmt = _client(s, MGMT)
    s.nomad.var_put("nomad/jobs/app", {"password": "mine"})
    s.nomad.var_put("nomad/jobs/db", {"password": "theirs"})
    mgmt.job.register_job("app", {"Job": _reader_job("app", "nomad/jobs/app")})
    (alloc,) = _running(s, mgmt, "app")
    assert s.task_view(alloc["ID"], "app")["Env"]["DB_PASSWORD"] == "mine"

    mgmt.job.register_job("billing", {"Job": _reader_job("billing", "nomad/jobs/db")})
    alloc = s.wait_for(lambda: mgmt.job.get_allocations("billing"))[0]
    denied = (
        "Template failed: nomad.var.get(nomad/jobs/db@default.global): "
        "Unexpected response code: 403 (Permission denied)"
    )

    def events():
        a = mgmt.allocation.get_allocation(alloc["ID"])
        return [e["DisplayMessage"] for e in a["TaskStates"]["app"]["Events"]]

    s.wait_for(lambda: denied in events())
    assert mgmt.allocation.get_allocation(alloc["ID"])["TaskStates"]["app"]["State"] == "pending"
    (tmpl,) = s.task_view(alloc["ID"], "app")["Templates"]
    assert tmpl["Denied"] and tmpl["Error"] == denied
    # A policy attached to another group of the job does not help ...
    s.nomad.acl.apply_policy(
        "other-group",
        """namespace "default" { variables {
        path "nomad/jobs/db" { capabilities = ["read"] } } }""",
        job_acl={"Namespace": "default", "JobID": "billing", "Group": "other"},
    )
    assert s.task_view(alloc["ID"], "app")["Templates"][0]["Denied"]
    # ... one attached to the job does (nomad acl policy apply -job billing ...).
    r = requests.put(
        f"{s.nomad_addr}/v1/acl/policy/billing-db",
        timeout=5,
        headers={"X-Nomad-Token": MGMT},
        json={
            "Name": "billing-db",
            "JobACL": {"Namespace": "default", "JobID": "billing"},
            "Rules": 'namespace "default" { variables { path "nomad/jobs/db" '
            '{ capabilities = ["read"] } } }',
        },
    )
    assert r.status_code == 200, r.text
    s.wait_for(lambda: mgmt.allocation.get_allocation(alloc["ID"])["ClientStatus"] == "running")
    assert s.task_view(alloc["ID"], "app")["Env"]["DB_PASSWORD"] == "theirs"


def test_without_acls_templates_read_any_variable(standin):
    s = standin
    client = _client(s)
    s.nomad.var_put("nomad/jobs/db", {"password": "theirs"})
    client.job.register_job("billing", {"Job": _reader_job("billing", "nomad/jobs/db")})
    (alloc,) = _running(s, client, "billing")
    assert s.task_view(alloc["ID"], "app")["Env"]["DB_PASSWORD"] == "theirs"


def _get(url: str, headers: dict) -> list:
    r = requests.get(url, headers=headers, timeout=5)
    r.raise_for_status()
    return r.json()


# -- Consul ACLs --------------------------------------------------------------------------------
def test_consul_token_rules_and_a_denied_transaction(standin_factory):
    import base64

    s = standin_factory(consul_acl_tokens={"root"})
    token = s.consul_token(
        'key_prefix "dockland/" { policy = "write" }\n'
        'key_prefix "" { policy = "read" }\n'
        'service "web" { policy = "read" }\n'
        'node_prefix "" { policy = "read" }'
    )
    base, hdr = s.consul_addr, {"X-Consul-Token": token}
    assert requests.put(f"{base}/v1/kv/dockland/a", data=b"1", headers=hdr, timeout=5).json()
    r = requests.put(f"{base}/v1/kv/other/a", data=b"1", headers=hdr, timeout=5)
    assert r.status_code == 403
    assert r.text.startswith("Permission denied: token with AccessorID '")
    assert r.text.endswith("lacks permission 'key:write' on \"other/a\"")

    def op(verb, key):
        return {"KV": {"Verb": verb, "Key": key, "Value": base64.b64encode(b"v").decode()}}

    r = requests.put(
        f"{base}/v1/txn",
        headers=hdr,
        timeout=5,
        json=[op("set", "dockland/b"), op("set", "other/b"), op("check-not-exists", "other/c")],
    )
    assert r.status_code == 409
    body = r.json()
    assert body["Results"] is None
    assert [e["OpIndex"] for e in body["Errors"]] == [1, 2]  # check-not-exists needs write
    assert all("lacks permission 'key:write'" in e["What"] for e in body["Errors"])
    assert (
        requests.get(
            f"{base}/v1/kv/dockland/b", headers={"X-Consul-Token": "root"}, timeout=5
        ).status_code
        == 404
    )  # all or nothing
    # Lists are filtered by the token's rules.
    s.consul.register_service(
        node=s.nomad.nodes[0]["Name"],
        service_id="w1",
        name="web",
        address="127.0.0.11",
        port=1,
        tags=[],
        meta={},
        check_status="passing",
        check_name="",
    )
    s.consul.register_service(
        node=s.nomad.nodes[0]["Name"],
        service_id="d1",
        name="db",
        address="127.0.0.11",
        port=2,
        tags=[],
        meta={},
        check_status="passing",
        check_name="",
    )
    r = requests.get(f"{base}/v1/catalog/services", headers=hdr, timeout=5)
    assert set(r.json()) == {"web"}
    assert r.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    assert requests.get(f"{base}/v1/health/service/db", headers=hdr, timeout=5).json() == []
    assert [e["Service"]["ID"] for e in _get(f"{base}/v1/health/service/web", hdr)] == ["w1"]
    # Without a node rule the same service's rows are filtered too: Consul's ACL filter keeps a
    # health row only when both its node and its service may be read (agent/consul/acl.go
    # filterCheckServiceNodes).
    no_node = {"X-Consul-Token": s.consul_token('service "web" { policy = "read" }')}
    r = requests.get(f"{base}/v1/health/service/web", headers=no_node, timeout=5)
    assert r.json() == [] and r.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    r = requests.get(f"{base}/v1/kv/nope", headers={"X-Consul-Token": "wrong"}, timeout=5)
    assert (r.status_code, r.text) == (403, "ACL not found")


def test_names_resolve_through_consul_dns_and_externals_can_be_declared(standin):
    s = standin
    client = _client(s)
    client.job.register_job("web", {"Job": make_job("web", count=1)})
    (alloc,) = _running(s, client, "web")
    env = s.task_view(alloc["ID"], "app")["Env"]
    s.wait_for(lambda: s.resolve("web-api.service.consul"))
    assert s.resolve("web-api.service.consul") == [env["NOMAD_IP_http"]]
    hit = s.reach(f"web-api.service.consul:{env['NOMAD_HOST_PORT_http']}")
    assert hit is not None and hit.alloc_id == alloc["ID"]
    assert s.reach("web-api.service.consul:8080") is None  # the container port is not published
    assert s.reach("nothing.service.consul:80") is None
    assert s.reach("10.20.30.40:5432") is None
    s.add_external("10.20.30.40:5432", "legacy-db")
    hit = s.reach("10.20.30.40:5432")
    assert (hit.job_id, hit.label) == ("legacy-db", "external")


def test_exec_tasks_bind_the_nodes_address(standin):
    s = standin
    client = _client(s)
    job = make_job("raw", count=1)
    group = job["TaskGroups"][0]
    group["Networks"] = [{"Mode": "host", "DynamicPorts": [{"Label": "http"}]}]
    group["Tasks"][0].update(Driver="exec", Config={"command": "/bin/server"})
    client.job.register_job("raw", {"Job": job})
    (alloc,) = _running(s, client, "raw")
    env = s.task_view(alloc["ID"], "app")["Env"]
    assert env["NOMAD_PORT_http"] == env["NOMAD_HOST_PORT_http"]  # no `to`: the host port
    assert s.reach(env["NOMAD_ADDR_http"]).task == "app"
    here = s.reach(f"127.0.0.1:{env['NOMAD_PORT_http']}", source=(alloc["ID"], "app"))
    assert here is not None and here.alloc_id == alloc["ID"]  # same (host) namespace


def test_workload_identity_is_bound_to_its_namespace(standin_factory):
    s = standin_factory(nomad_acl_token=MGMT)
    mgmt = _client(s, MGMT)
    s.nomad.var_put("nomad/jobs/app", {"password": "other-namespace"}, namespace="team")
    mgmt.job.register_job("app", {"Job": _reader_job("app", "nomad/jobs/app@team.global")})
    alloc = s.wait_for(lambda: mgmt.job.get_allocations("app"))[0]
    denied = (
        "Template failed: nomad.var.get(nomad/jobs/app@team.global): "
        "Unexpected response code: 403 (Permission denied)"
    )
    s.wait_for(lambda: s.task_view(alloc["ID"], "app")["Templates"][0].get("Error") == denied)
    s.nomad.acl.apply_policy(
        "app-team",
        """namespace "team" { variables {
        path "nomad/jobs/app" { capabilities = ["read"] } } }""",
        job_acl={"Namespace": "default", "JobID": "app"},
    )
    s.wait_for(lambda: mgmt.allocation.get_allocation(alloc["ID"])["ClientStatus"] == "running")
    assert s.task_view(alloc["ID"], "app")["Env"]["DB_PASSWORD"] == "other-namespace"


def test_consul_session_rules(standin_factory):
    s = standin_factory(consul_acl_tokens={"root"})
    keys_only = s.consul_token('key_prefix "" { policy = "write" }')
    sessions = s.consul_token('session_prefix "" { policy = "write" }')
    url = f"{s.consul_addr}/v1/session/create"
    r = requests.put(url, json={"TTL": "15s"}, headers={"X-Consul-Token": keys_only}, timeout=5)
    assert r.status_code == 403 and "lacks permission 'session:write'" in r.text
    r = requests.put(url, json={"TTL": "15s"}, headers={"X-Consul-Token": sessions}, timeout=5)
    assert r.status_code == 200 and r.json()["ID"]


def test_consul_service_maintenance_needs_service_write_and_changes_nothing(standin_factory):
    """agent/agent_endpoint.go AgentServiceMaintenance: `enable` required and a Go bool; an
    unknown ID is 404; a known one needs service:write on its name; enable=false on a service
    not in maintenance is a no-op (what nomadgen's destroy uses to ask before it writes)."""
    s = standin_factory(consul_acl_tokens={"root"})
    root = {"X-Consul-Token": "root"}
    url = f"{s.consul_addr}/v1/agent/service"
    r = requests.put(
        f"{url}/register",
        json={"Name": "billing", "ID": "b-1", "Address": "10.0.0.9", "Port": 443},
        headers=root,
        timeout=5,
    )
    assert r.status_code == 200, r.text
    before = requests.get(f"{s.consul_addr}/v1/agent/services", headers=root, timeout=5).json()
    reader = {"X-Consul-Token": s.consul_token('service "billing" { policy = "read" }')}
    writer = {"X-Consul-Token": s.consul_token('service "billing" { policy = "write" }')}
    r = requests.put(f"{url}/maintenance/b-1?enable=false", headers=reader, timeout=5)
    assert r.status_code == 403 and "lacks permission 'service:write' on \"billing\"" in r.text
    for q in ("enable=false", "enable=False", "enable=0"):
        r = requests.put(f"{url}/maintenance/b-1?{q}", headers=writer, timeout=5)
        assert r.status_code == 200, (q, r.text)
    r = requests.put(f"{url}/maintenance/b-1", headers=writer, timeout=5)
    assert (r.status_code, r.text) == (400, "Missing value for enable")
    r = requests.put(f"{url}/maintenance/b-1?enable=maybe", headers=writer, timeout=5)
    assert (r.status_code, r.text) == (400, 'Invalid value for enable: "maybe"')
    r = requests.put(f"{url}/maintenance/nope?enable=false", headers=root, timeout=5)
    assert r.status_code == 404 and r.text.startswith('Unknown service ID "nope"')
    r = requests.put(f"{url}/maintenance/b-1?enable=true", headers=writer, timeout=5)
    assert r.status_code == 501  # maintenance mode itself is not modelled: never a quiet yes
    after = requests.get(f"{s.consul_addr}/v1/agent/services", headers=root, timeout=5).json()
    assert after == before
