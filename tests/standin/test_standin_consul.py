"""The Consul stand-in, exercised only through real clients: py-consul, requests, dnspython."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import consul
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import requests
from consul.exceptions import ACLPermissionDenied, ClientError
from nomad_standin.consul import ConsulState, make_handler
from nomad_standin.dns import DNSServer

TOKEN = "s3cr3t-management-token"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(autouse=True)
def _no_consul_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # py-consul reads CONSUL_HTTP_ADDR / CONSUL_HTTP_TOKEN (the token env even beats token=).
    for key in list(os.environ):
        if key.startswith("CONSUL_"):
            monkeypatch.delenv(key)


def _serve(state: ConsulState, hook=None) -> Iterator[SimpleNamespace]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state, hook))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = srv.server_address[1]
    try:
        yield SimpleNamespace(
            state=state,
            port=port,
            url=f"http://127.0.0.1:{port}",
            client=consul.Consul(host="127.0.0.1", port=port, scheme="http"),
        )
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def api() -> Iterator[SimpleNamespace]:
    yield from _serve(ConsulState())


@pytest.fixture
def acl_api() -> Iterator[SimpleNamespace]:
    yield from _serve(ConsulState(acl_tokens={TOKEN}))


def _psql(state: ConsulState, statuses=("passing", "passing", "passing")) -> None:
    for i, (zone, status) in enumerate(zip(("zone-a", "zone-b", "zone-c"), statuses, strict=True)):
        state.register_node(f"client-{i}", f"10.0.0.{i + 1}", {"rack": f"r{i}"})
        state.register_service(
            node=f"client-{i}",
            service_id=f"_nomad-task-{i}-psql",
            name="psql-app",
            address=f"10.0.0.{i + 1}",
            port=5432 + i,
            tags=[zone, "primary"] if i == 0 else [zone],
            meta={"version": "16"},
            check_status=status,
        )


# ----------------------------------------------------------------------------- KV


def test_kv_put_get_recurse_keys_delete_roundtrip_with_bytes(api):
    c = api.client
    blob = bytes(range(256))
    assert c.kv.put("app/cfg/blob", blob) is True
    assert c.kv.put("app/cfg/name", "psql") is True
    assert c.kv.put("app/other", b"o") is True

    _, item = c.kv.get("app/cfg/blob")
    assert item["Value"] == blob and item["Key"] == "app/cfg/blob"
    assert item["CreateIndex"] == item["ModifyIndex"] > 1

    _, items = c.kv.get("app/cfg/", recurse=True)
    assert [i["Key"] for i in items] == ["app/cfg/blob", "app/cfg/name"]
    assert items[1]["Value"] == b"psql"

    _, keys = c.kv.get("app/", keys=True)
    assert keys == ["app/cfg/blob", "app/cfg/name", "app/other"]
    _, keys = c.kv.get("app/", keys=True, separator="/")
    assert keys == ["app/cfg/", "app/other"]

    raw = requests.get(f"{api.url}/v1/kv/app/cfg/blob?raw", timeout=5)
    assert raw.status_code == 200 and raw.content == blob

    assert c.kv.delete("app/other") is True
    assert c.kv.get("app/other")[1] is None
    assert c.kv.delete("app/cfg", recurse=True) is True
    assert c.kv.get("app/cfg", recurse=True)[1] is None
    missing = requests.get(f"{api.url}/v1/kv/app/cfg/blob", timeout=5)
    assert missing.status_code == 404 and missing.content == b""
    assert int(missing.headers["X-Consul-Index"]) >= 1
    assert missing.headers["X-Consul-KnownLeader"] == "true"


def test_kv_cas_zero_is_create_only(api):
    c = api.client
    assert c.kv.put("lock/owner", "a", cas=0) is True
    assert c.kv.put("lock/owner", "b", cas=0) is False
    assert c.kv.get("lock/owner")[1]["Value"] == b"a"


def test_kv_cas_with_stale_index_returns_false(api):
    c = api.client
    c.kv.put("doc", "v1")
    _, first = c.kv.get("doc")
    c.kv.put("doc", "v2")
    assert c.kv.put("doc", "v3", cas=first["ModifyIndex"]) is False
    _, now = c.kv.get("doc")
    assert now["Value"] == b"v2"
    assert c.kv.put("doc", "v3", cas=now["ModifyIndex"]) is True
    assert c.kv.get("doc")[1]["Value"] == b"v3"
    # DELETE ?cas follows the same rule.
    _, cur = c.kv.get("doc")
    assert c.kv.delete("doc", cas=cur["ModifyIndex"] - 1) is False
    assert c.kv.delete("doc", cas=cur["ModifyIndex"]) is True


def test_kv_flags_are_stored(api):
    c = api.client
    c.kv.put("flagged", "x", flags=42)
    assert c.kv.get("flagged")[1]["Flags"] == 42
    c.kv.put("flagged", "x")  # a plain PUT resets flags to 0, as in Consul
    assert c.kv.get("flagged")[1]["Flags"] == 0


def test_kv_identical_put_keeps_modify_index_and_empty_value_is_null(api):
    c = api.client
    c.kv.put("same", "v")
    _, a = c.kv.get("same")
    c.kv.put("same", "v")
    _, b = c.kv.get("same")
    assert a["ModifyIndex"] == b["ModifyIndex"]
    c.kv.put("empty", "")
    body = requests.get(f"{api.url}/v1/kv/empty", timeout=5).json()
    assert body[0]["Value"] is None


def test_kv_rejects_leading_slash_and_oversized_value(api):
    r = requests.put(f"{api.url}/v1/kv//abs", data=b"x", timeout=5)
    assert r.status_code == 400
    assert requests.put(f"{api.url}/v1/kv/fits", data=b"x" * 524288, timeout=5).json() is True
    r = requests.put(f"{api.url}/v1/kv/big", data=b"x" * (524288 + 1), timeout=5)
    assert r.status_code == 413
    assert r.text.startswith("Request body(524289 bytes) too large, max size: 524288 bytes.")
    with pytest.raises(ClientError, match="413"):
        api.client.kv.put("big", b"x" * (524288 + 1))
    assert api.state.kv_get("big") is None


# ----------------------------------------------------------------------------- blocking queries


def test_blocking_kv_query_wakes_promptly_on_write(api):
    c = api.client
    c.kv.put("watched", "old")
    index, _ = c.kv.get("watched")

    def writer() -> None:
        time.sleep(0.3)
        consul.Consul(host="127.0.0.1", port=api.port, scheme="http").kv.put("watched", "new")

    threading.Thread(target=writer, daemon=True).start()
    start = time.monotonic()
    new_index, item = c.kv.get("watched", index=index, wait="5s")
    elapsed = time.monotonic() - start
    assert elapsed < 2.0
    assert int(new_index) > int(index)
    assert item["Value"] == b"new"


def test_blocking_kv_query_without_write_returns_after_wait_with_same_index(api):
    c = api.client
    c.kv.put("quiet", "v")
    index, _ = c.kv.get("quiet")
    start = time.monotonic()
    same, item = c.kv.get("quiet", index=index, wait="1s")
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 3.0
    assert same == index and item["Value"] == b"v"


def test_blocking_query_rejects_bad_wait(api):
    r = requests.get(f"{api.url}/v1/kv/x?index=1&wait=5", timeout=5)
    assert (r.status_code, r.text) == (400, "Invalid wait time")


# ----------------------------------------------------------------------------- transactions


def test_txn_with_two_ops_commits_atomically(api):
    c = api.client
    out = c.txn.put(
        [
            {"KV": {"Verb": "set", "Key": "iface/a", "Value": b64(b"A")}},
            {"KV": {"Verb": "set", "Key": "iface/b", "Value": b64(b"B"), "Flags": 7}},
        ]
    )
    assert out["Errors"] is None
    assert [r["KV"]["Key"] for r in out["Results"]] == ["iface/a", "iface/b"]
    a, b = (c.kv.get(k)[1] for k in ("iface/a", "iface/b"))
    assert (a["Value"], b["Value"], b["Flags"]) == (b"A", b"B", 7)
    assert a["ModifyIndex"] == b["ModifyIndex"]  # one raft index for the whole txn


def test_txn_with_stale_cas_rolls_back_everything(api):
    c = api.client
    c.kv.put("iface/ver", "1")
    _, cur = c.kv.get("iface/ver")
    c.kv.put("iface/ver", "2")
    ops = [
        {"KV": {"Verb": "set", "Key": "iface/new", "Value": b64(b"N")}},
        {
            "KV": {
                "Verb": "cas",
                "Key": "iface/ver",
                "Value": b64(b"3"),
                "Index": cur["ModifyIndex"],
            }
        },
    ]
    with pytest.raises(ClientError) as exc:
        c.txn.put(ops)
    assert str(exc.value).startswith("409 ")
    assert c.kv.get("iface/new")[1] is None
    assert c.kv.get("iface/ver")[1]["Value"] == b"2"

    r = requests.put(f"{api.url}/v1/txn", data=json.dumps(ops), timeout=5)
    assert r.status_code == 409
    assert r.json() == {
        "Results": None,
        "Errors": [{"OpIndex": 1, "What": 'failed to set key "iface/ver", index is stale'}],
    }


def test_txn_op_limit_and_bad_json(api):
    op = {"KV": {"Verb": "get-tree", "Key": "x/"}}
    assert (
        requests.put(f"{api.url}/v1/txn", data=json.dumps([op] * 128), timeout=5).status_code == 200
    )
    r = requests.put(f"{api.url}/v1/txn", data=json.dumps([op] * 129), timeout=5)
    assert (r.status_code, r.text) == (413, "Transaction contains too many operations (129 > 128)")
    r = requests.put(f"{api.url}/v1/txn", data=b"[{not json", timeout=5)
    assert r.status_code == 400 and r.text.startswith("Failed to parse body")


# ----------------------------------------------------------------------------- catalog / health


def test_catalog_and_health_show_service_registered_by_nomad_side(api):
    _psql(api.state)
    c = api.client
    _, services = c.catalog.services()
    assert services["psql-app"] == ["primary", "zone-a", "zone-b", "zone-c"]
    assert "consul" in services  # the server's own service, as on a real cluster

    _, nodes = c.catalog.service("psql-app")
    assert [(n["Node"], n["ServiceAddress"], n["ServicePort"]) for n in nodes] == [
        ("client-0", "10.0.0.1", 5432),
        ("client-1", "10.0.0.2", 5433),
        ("client-2", "10.0.0.3", 5434),
    ]
    assert nodes[0]["ServiceMeta"] == {"version": "16"} and nodes[0]["Datacenter"] == "dc1"

    _, health = c.health.service("psql-app", passing=True)
    assert len(health) == 3
    first = health[0]
    assert first["Service"]["ID"] == "_nomad-task-0-psql" and first["Service"]["Port"] == 5432
    assert first["Node"]["Meta"] == {"rack": "r0"}
    assert {ch["CheckID"]: ch["Status"] for ch in first["Checks"]} == {
        "serfHealth": "passing",
        "service:_nomad-task-0-psql": "passing",
    }
    _, tagged = c.health.service("psql-app", tag="zone-b")
    assert [h["Service"]["Address"] for h in tagged] == ["10.0.0.2"]
    assert (
        api.state.healthy_instances("psql-app", tag="primary")[0]["ServiceID"]
        == "_nomad-task-0-psql"
    )

    _, filtered = c.health.service(
        "psql-app", filter_expr='Service.Meta.version == "16" and "zone-c" in Service.Tags'
    )
    assert [h["Service"]["Port"] for h in filtered] == [5434]
    with pytest.raises(consul.exceptions.BadRequest):
        c.health.service("psql-app", filter_expr="Service.Port ===")

    # Catalog registration of an external service with no check: only serfHealth gates it.
    assert (
        c.catalog.register("ext", "192.0.2.7", service={"Service": "billing", "Port": 443}) is True
    )
    _, ext = c.health.service("billing", passing=True)
    assert [(h["Node"]["Address"], h["Service"]["Port"]) for h in ext] == [("192.0.2.7", 443)]
    assert [ch["CheckID"] for ch in ext[0]["Checks"]] == ["serfHealth"]


def test_health_passing_hides_critical_instance(api):
    _psql(api.state, ("passing", "critical", "warning"))
    c = api.client
    assert len(c.health.service("psql-app")[1]) == 3
    assert [h["Node"]["Node"] for h in c.health.service("psql-app", passing=True)[1]] == [
        "client-0"
    ]
    for spelling in ("passing", "passing=true", "passing=1"):
        r = requests.get(f"{api.url}/v1/health/service/psql-app?{spelling}", timeout=5)
        assert len(r.json()) == 1, spelling
    assert requests.get(f"{api.url}/v1/health/service/psql-app?passing=false", timeout=5).json()
    r = requests.get(f"{api.url}/v1/health/service/psql-app?passing=maybe", timeout=5)
    assert (r.status_code, r.text) == (400, "Invalid value for ?passing")
    _, critical = c.health.state("critical")
    assert [ch["ServiceID"] for ch in critical] == ["_nomad-task-1-psql"]


def test_set_service_health_flips_and_wakes_blocking_health_query(api):
    _psql(api.state)
    c = api.client
    index, before = c.health.service("psql-app", passing=True)
    assert len(before) == 3

    def flip() -> None:
        time.sleep(0.3)
        api.state.set_service_health("_nomad-task-2-psql", "critical")

    threading.Thread(target=flip, daemon=True).start()
    start = time.monotonic()
    new_index, after = c.health.service("psql-app", passing=True, index=index, wait="5s")
    assert time.monotonic() - start < 2.0
    assert int(new_index) > int(index)
    assert [h["Node"]["Node"] for h in after] == ["client-0", "client-1"]
    api.state.set_service_health("_nomad-task-2-psql", "passing")
    assert len(c.health.service("psql-app", passing=True)[1]) == 3
    api.state.deregister_service("_nomad-task-0-psql")
    assert [n["ServiceID"] for n in c.catalog.service("psql-app")[1]] == [
        "_nomad-task-1-psql",
        "_nomad-task-2-psql",
    ]


def test_agent_service_register_and_deregister_via_py_consul(api):
    c = api.client
    ok = c.agent.service.register(
        "web",
        service_id="web-1",
        address="10.1.1.1",
        port=8080,
        tags=["v1"],
        meta={"owner": "team"},
        check=consul.Check.ttl("10s"),
    )
    assert ok is True
    services = c.agent.services()
    assert services["web-1"]["Service"] == "web" and services["web-1"]["Port"] == 8080
    # A check registered without Status starts critical.
    _, checks = c.health.checks("web")
    assert [(ch["CheckID"], ch["Status"], ch["Type"]) for ch in checks] == [
        ("service:web-1", "critical", "ttl")
    ]
    assert c.health.service("web", passing=True)[1] == []
    assert c.agent.check.ttl_pass("service:web-1") is True
    assert len(c.health.service("web", passing=True)[1]) == 1

    assert c.agent.service.deregister("web-1") is True
    assert "web-1" not in c.agent.services()
    assert c.catalog.service("web")[1] == []
    r = requests.put(f"{api.url}/v1/agent/service/deregister/web-1", timeout=5)
    assert r.status_code == 404 and r.text.startswith('Unknown service ID "web-1"')
    r = requests.put(f"{api.url}/v1/agent/service/register", json={"Port": 1}, timeout=5)
    assert (r.status_code, r.text) == (400, "Missing service name")


# ----------------------------------------------------------------------------- ACL


def test_acl_requires_known_token(acl_api):
    anon = acl_api.client
    with pytest.raises(ACLPermissionDenied, match="Permission denied"):
        anon.kv.put("secret", "x")
    with pytest.raises(ACLPermissionDenied, match="Permission denied"):
        anon.kv.get("secret")
    bogus = consul.Consul(host="127.0.0.1", port=acl_api.port, scheme="http", token="nope")
    with pytest.raises(ACLPermissionDenied, match="ACL not found"):
        bogus.kv.get("secret")

    authed = consul.Consul(host="127.0.0.1", port=acl_api.port, scheme="http", token=TOKEN)
    assert authed.kv.put("secret", "x") is True
    assert authed.kv.get("secret")[1]["Value"] == b"x"
    r = requests.get(
        f"{acl_api.url}/v1/kv/secret", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert r.status_code == 200

    # Lists are filtered for the anonymous token, not refused (real Consul behaviour).
    r = requests.get(f"{acl_api.url}/v1/catalog/services", timeout=5)
    assert (r.status_code, r.json()) == (200, {})
    assert r.headers["X-Consul-Results-Filtered-By-ACLs"] == "true"
    # py-consul's txn.put sends no token: every write op fails its ACL pre-check.
    with pytest.raises(ClientError, match="409 .*Permission denied"):
        anon.txn.put([{"KV": {"Verb": "set", "Key": "secret", "Value": b64(b"y")}}])
    assert acl_api.state.kv_get("secret") == b"x"


# ----------------------------------------------------------------------------- routing, hook


def test_unknown_route_is_501_and_logged_wrong_method_is_405(api, caplog):
    with caplog.at_level(logging.WARNING, logger="standin.consul"):
        r = requests.get(f"{api.url}/v1/operator/raft/configuration", timeout=5)
    assert r.status_code == 501 and "/v1/operator/raft/configuration" in r.text
    assert any("/v1/operator/raft/configuration" in rec.getMessage() for rec in caplog.records)
    r = requests.get(f"{api.url}/v1/txn", timeout=5)
    assert (r.status_code, r.headers["Allow"]) == (405, "PUT")
    assert requests.get(f"{api.url}/v1/status/leader", timeout=5).json() == "127.0.0.1:8300"


def test_hook_can_answer_instead_of_the_handler():
    calls = []

    def hook(handler: BaseHTTPRequestHandler, system: str) -> bool:
        calls.append((system, handler.command, handler.path))
        if handler.path.startswith("/v1/kv/flaky"):
            handler.send_response(503)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return True
        return False

    state = ConsulState()
    for env in _serve(state, hook):
        r = requests.put(f"{env.url}/v1/kv/flaky", data=b"x", timeout=5)
        assert r.status_code == 503
        assert state.kv_get("flaky") is None
        assert requests.put(f"{env.url}/v1/kv/fine", data=b"x", timeout=5).json() is True
    assert calls == [("consul", "PUT", "/v1/kv/flaky"), ("consul", "PUT", "/v1/kv/fine")]


# ----------------------------------------------------------------------------- DNS


@pytest.fixture
def dns_env() -> Iterator[SimpleNamespace]:
    state = ConsulState()
    _psql(state)
    server = DNSServer(state).start()
    try:
        yield SimpleNamespace(state=state, port=server.port)
    finally:
        server.stop()


def _ask(env, name: str, rdtype: str = "A", *, tcp: bool = False, edns: bool = False):
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else None)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=env.port, timeout=3)


def _values(resp, section: str = "answer", rdtype=dns.rdatatype.A) -> list[str]:
    return sorted(
        rd.to_text() for rrset in getattr(resp, section) if rrset.rdtype == rdtype for rd in rrset
    )


def test_dns_a_records_for_every_healthy_instance(dns_env):
    resp = _ask(dns_env, "psql-app.service.consul")
    assert resp.rcode() == dns.rcode.NOERROR
    assert resp.flags & dns.flags.AA
    assert _values(resp) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert all(rrset.ttl == 0 for rrset in resp.answer)
    assert _values(_ask(dns_env, "psql-app.service.dc1.consul", tcp=True)) == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
    ]


def test_dns_tag_filter(dns_env):
    assert _values(_ask(dns_env, "zone-a.psql-app.service.consul")) == ["10.0.0.1"]
    assert _values(
        _ask(dns_env, "_psql-app._zone-b.service.consul", "SRV"), rdtype=dns.rdatatype.SRV
    ) == ["1 1 5433 0a000002.addr.dc1.consul."]


def test_dns_srv_has_ports_and_addresses_in_additional(dns_env):
    resp = _ask(dns_env, "_psql-app._tcp.service.consul", "SRV")
    assert _values(resp, rdtype=dns.rdatatype.SRV) == [
        "1 1 5432 0a000001.addr.dc1.consul.",
        "1 1 5433 0a000002.addr.dc1.consul.",
        "1 1 5434 0a000003.addr.dc1.consul.",
    ]
    extra = {
        rrset.name.to_text(): rrset[0].to_text()
        for rrset in resp.additional
        if rrset.rdtype == dns.rdatatype.A
    }
    assert extra == {
        "0a000001.addr.dc1.consul.": "10.0.0.1",
        "0a000002.addr.dc1.consul.": "10.0.0.2",
        "0a000003.addr.dc1.consul.": "10.0.0.3",
    }
    plain = _ask(dns_env, "psql-app.service.consul", "SRV")
    assert len(_values(plain, rdtype=dns.rdatatype.SRV)) == 3


def test_dns_unknown_name_is_nxdomain_with_soa(dns_env):
    for name in ("nope.service.consul", "what.consul", "psql-app.service.dc9.consul"):
        resp = _ask(dns_env, name)
        assert resp.rcode() == dns.rcode.NXDOMAIN, name
        assert [rrset.rdtype for rrset in resp.authority] == [dns.rdatatype.SOA]
    assert _ask(dns_env, "example.com").rcode() == dns.rcode.REFUSED
    nodata = _ask(dns_env, "psql-app.service.consul", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and not nodata.answer and nodata.authority


def test_dns_skips_critical_instances(dns_env):
    dns_env.state.set_service_health("_nomad-task-1-psql", "critical")
    assert _values(_ask(dns_env, "psql-app.service.consul")) == ["10.0.0.1", "10.0.0.3"]
    dns_env.state.set_service_health("_nomad-task-0-psql", "critical")
    dns_env.state.set_service_health("_nomad-task-2-psql", "critical")
    resp = _ask(dns_env, "psql-app.service.consul")
    assert resp.rcode() == dns.rcode.NXDOMAIN  # a known service with nothing usable


def test_dns_udp_answer_limit_without_edns(dns_env):
    dns_env.state.register_node("client-3", "10.0.0.4")
    dns_env.state.register_service(
        node="client-3",
        service_id="psql-4",
        name="psql-app",
        address="10.0.0.4",
        port=5440,
        tags=[],
    )
    assert len(_values(_ask(dns_env, "psql-app.service.consul"))) == 3  # udp_answer_limit
    assert len(_values(_ask(dns_env, "psql-app.service.consul", edns=True))) == 4
    assert len(_values(_ask(dns_env, "psql-app.service.consul", tcp=True))) == 4


def test_dns_node_lookup(dns_env):
    resp = _ask(dns_env, "client-1.node.consul")
    assert _values(resp) == ["10.0.0.2"]
    assert _values(resp, "additional", dns.rdatatype.TXT) == ['"rack=r1"']
    assert _ask(dns_env, "ghost.node.consul").rcode() == dns.rcode.NXDOMAIN
