"""The clients' HTTP session: the proxy and CA-bundle variables mean what they mean to requests,
read once per host instead of on every request."""

from __future__ import annotations

import itertools

import pytest
import requests
import requests.sessions

from nomadgen.backends import http_session

URLS = (
    "http://127.0.0.1:4646/v1/jobs?namespace=default",
    "http://127.0.0.1:4646/v1/evaluations?filter=ID%20%3D%3D%20%22x%22",
    "https://nomad.example.com:4646/v1/job/app",
    "http://consul.internal:8500/v1/kv/nomadgen/app?recurse=",
    "http://[::1]:8500/v1/health/service/app",
)
ENVS = (
    {},
    {"HTTP_PROXY": "http://proxy.example:3128", "HTTPS_PROXY": "http://tls-proxy.example:3128"},
    {"HTTP_PROXY": "http://proxy.example:3128", "NO_PROXY": "127.0.0.1,.internal"},
    {"https_proxy": "http://p:1", "no_proxy": "example.com"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/ca.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem", "ALL_PROXY": "socks5://s:1080"},
)
OPTIONS = (
    ({}, False, True, None),
    ({}, False, False, None),
    ({}, False, "/etc/nomad/ca.pem", ("/c.pem", "/k.pem")),
    ({"no_proxy": "nomad.example.com"}, False, None, ()),
)
VARIABLES = {k for env in ENVS for k in env} | {
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
}


@pytest.mark.parametrize("env", ENVS)
def test_settings_are_those_requests_reads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for k in VARIABLES:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ours, plain = http_session(), requests.Session()
    for url, (proxies, stream, verify, cert) in itertools.product(URLS * 2, OPTIONS):
        want = plain.merge_environment_settings(url, dict(proxies), stream, verify, cert)
        got = ours.merge_environment_settings(url, dict(proxies), stream, verify, cert)
        assert got == want, (url, proxies, verify, cert)


def _count_environment_reads(monkeypatch: pytest.MonkeyPatch, session: requests.Session) -> int:
    calls = []
    real = requests.sessions.get_environ_proxies

    def counted(url: str, no_proxy: str | None = None) -> dict[str, str]:
        calls.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counted)
    for i in range(50):
        session.merge_environment_settings(
            f"http://127.0.0.1:4646/v1/job/app-{i}", {}, False, True, None
        )
    return len(calls)


def test_the_environment_is_read_once_per_host(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _count_environment_reads(monkeypatch, http_session()) == 1


def test_known_bad_requests_reads_it_on_every_request(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _count_environment_reads(monkeypatch, requests.Session()) == 50


def test_the_pool_keeps_a_connection_per_concurrent_request() -> None:
    adapter = http_session(pool=24).get_adapter("http://127.0.0.1:4646/")
    assert adapter._pool_maxsize == 24  # noqa: SLF001
    assert requests.Session().get_adapter("http://x/")._pool_maxsize == 10  # noqa: SLF001
