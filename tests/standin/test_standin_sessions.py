"""The stand-in's Consul sessions and locks, as Consul has them (agent/session_endpoint.go,
agent/consul/session_ttl.go, agent/consul/state/kvs.go)."""

from __future__ import annotations

import time

import pytest
import requests


@pytest.fixture
def consul(standin_factory):
    s = standin_factory()
    return s, s.consul_addr


def put(addr, path, **kw):
    return requests.put(addr + path, timeout=5, **kw)


def create(addr, **body):
    r = put(addr, "/v1/session/create", json=body)
    assert r.status_code == 200, r.text
    return r.json()["ID"]


def test_acquire_is_exclusive_and_release_needs_the_holder(consul):
    _, addr = consul
    a, b = create(addr, Name="a", TTL="10s"), create(addr, Name="b", TTL="10s")
    assert put(addr, f"/v1/kv/lk?acquire={a}", data=b"A").json() is True
    assert put(addr, f"/v1/kv/lk?acquire={a}", data=b"A2").json() is True  # held already
    assert put(addr, f"/v1/kv/lk?acquire={b}", data=b"B").json() is False
    assert put(addr, f"/v1/kv/lk?release={b}").json() is False
    entry = requests.get(addr + "/v1/kv/lk", timeout=5).json()[0]
    assert entry["Session"] == a and entry["LockIndex"] == 1
    assert put(addr, f"/v1/kv/lk?release={a}").json() is True
    entry = requests.get(addr + "/v1/kv/lk", timeout=5).json()[0]
    assert "Session" not in entry
    assert put(addr, f"/v1/kv/lk?acquire={b}", data=b"B").json() is True
    assert requests.get(addr + "/v1/kv/lk", timeout=5).json()[0]["LockIndex"] == 2


def test_unknown_session_and_bad_ttl_are_errors(consul):
    _, addr = consul
    r = put(addr, "/v1/kv/lk?acquire=00000000-0000-0000-0000-000000000000", data=b"x")
    assert r.status_code == 500 and "invalid session" in r.text
    r = put(addr, "/v1/session/create", json={"TTL": "5s"})
    assert r.status_code == 500 and "Invalid Session TTL" in r.text
    assert put(addr, "/v1/session/renew/00000000-0000-0000-0000-000000000000").status_code == 404


def test_destroy_releases_and_the_lock_delay_holds_others_off(consul):
    _, addr = consul
    a, b = create(addr, TTL="10s", LockDelay="15s"), create(addr, TTL="10s")
    assert put(addr, f"/v1/kv/lk?acquire={a}", data=b"A").json() is True
    assert put(addr, f"/v1/session/destroy/{a}").json() is True
    assert "Session" not in requests.get(addr + "/v1/kv/lk", timeout=5).json()[0]
    assert requests.get(addr + f"/v1/session/info/{a}", timeout=5).json() == []
    # 15 s of lock-delay: nobody may take it yet (kvs_endpoint.go).
    assert put(addr, f"/v1/kv/lk?acquire={b}", data=b"B").json() is False


def test_a_session_not_renewed_expires_after_twice_its_ttl(consul):
    s, addr = consul
    s.consul.time_scale = 0.01  # 10 s TTL -> invalidated after 0.2 s
    a = create(addr, TTL="10s", LockDelay="0s")
    assert put(addr, f"/v1/kv/lk?acquire={a}", data=b"A").json() is True
    deadline = time.monotonic() + 20
    while (
        requests.get(addr + f"/v1/session/info/{a}", timeout=5).json()
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert requests.get(addr + f"/v1/session/info/{a}", timeout=5).json() == []
    assert "Session" not in requests.get(addr + "/v1/kv/lk", timeout=5).json()[0]


def test_sessions_need_session_write_under_acls(standin_factory):
    s = standin_factory(consul_acl_tokens={"tok"})
    r = put(s.consul_addr, "/v1/session/create", json={"TTL": "10s"})
    assert r.status_code == 403 and "session:write" in r.text
    r = put(
        s.consul_addr, "/v1/session/create", json={"TTL": "10s"}, headers={"X-Consul-Token": "tok"}
    )
    assert r.status_code == 200
