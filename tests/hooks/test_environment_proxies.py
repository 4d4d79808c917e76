"""The proxy the environment names, through a real forward proxy (proxy.py): both hooks choose the
same one for a URL (the sync hook's requests decides; the async hook asks it once and keeps the
answer), a change to the variables is seen by the next request, and no poll takes a trip to a thread
for it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain._transport.envproxy import environment_route
from airflow_provider_vbrain.exceptions import VBrainConnectionError, VBrainInputError
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook, VBrainHook
from tests.conftest import PROXY_PASSWORD, PROXY_USER, PROXY_VARIABLES
from tests.hooks.test_proxies import (
    WRONG_PASSWORD,
    async_hook_lists_repositories,
    both_hooks_list_repositories,
    clean,
    connect,
    free_port,
    host_of,
)


def through(proxy: Any, emulator: Any, requests: int) -> None:
    """``proxy`` forwarded ``requests`` listings to ``emulator``, and the emulator answered them."""
    forwarded = proxy.forwarded(settle=5, at_least=requests)
    assert [(f.method, f.destination, f.path) for f in forwarded] == [
        ("GET", host_of(emulator.url), "/api/v1/repository")
    ] * requests
    assert len(emulator.requests()) == requests


HTTPS = "https://vbrain.example.com"
HTTP = "http://vbrain.example.com"


@pytest.mark.parametrize(
    ("variables", "url", "expected"),
    [
        pytest.param({}, HTTPS, None, id="none"),
        pytest.param({"HTTPS_PROXY": "http://p:1"}, HTTPS, "http://p:1", id="https"),
        pytest.param({"HTTP_PROXY": "http://p:1"}, HTTPS, None, id="http-only-for-http"),
        pytest.param({"ALL_PROXY": "http://p:1"}, HTTPS, "http://p:1", id="all"),
        pytest.param(
            {"ALL_PROXY": "http://p:1", "HTTPS_PROXY": "http://q:2"}, HTTPS, "http://q:2", id="scheme-first"
        ),
        pytest.param(
            {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"},
            HTTPS,
            "http://low:1",
            id="lower-case-wins",
        ),
        pytest.param({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, HTTPS, None, id="no-domain"),
        pytest.param(
            {"HTTPS_PROXY": "http://p:1", "no_proxy": ".example.com"}, HTTPS, None, id="no-dot-domain"
        ),
        pytest.param(
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "other.com,*.org"}, HTTPS, "http://p:1", id="no-other"
        ),
        pytest.param(
            {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "vbrain.example.com:8443"},
            HTTPS + ":8443",
            None,
            id="no-port",
        ),
        pytest.param(
            {"HTTP_PROXY": "http://p:1", "NO_PROXY": "10.0.0.0/8"}, "http://10.1.2.3:80", None, id="no-cidr"
        ),
        pytest.param(
            {"HTTP_PROXY": "proxy.example.com:3128"}, HTTP, "http://proxy.example.com:3128", id="no-scheme"
        ),
        pytest.param({"HTTP_PROXY": "http://u:p%40ss@p:1"}, HTTP, "http://u:p%40ss@p:1", id="credentials"),
        pytest.param({"HTTP_PROXY": "http://p:1", "REQUEST_METHOD": "GET"}, HTTP, None, id="cgi"),
    ],
)
def test_the_environments_proxy_is_the_one_requests_chooses(
    proxy_env: Any, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], url: str, expected: str | None
) -> None:
    import requests
    from requests.utils import prepend_scheme_if_needed, select_proxy

    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    proxy_env(**variables)
    found = environment_route(url + "/api/v1")
    chosen = select_proxy(
        url, requests.Session().merge_environment_settings(url, {}, None, None, None)["proxies"]
    )
    assert found.problem is None
    assert (
        (found.proxy and str(found.proxy))
        == expected
        == (chosen and prepend_scheme_if_needed(chosen, "http"))
    )


def test_both_hooks_follow_all_proxy(vbrain_conn: Any, forward_proxy: Any, proxy_env: Any) -> None:
    proxy_env(ALL_PROXY=forward_proxy.url)
    both_hooks_list_repositories()
    through(forward_proxy, vbrain_conn, 2)


def test_both_hooks_read_a_proxy_without_a_scheme_as_http(
    vbrain_conn: Any, forward_proxy: Any, proxy_env: Any
) -> None:
    proxy_env(HTTP_PROXY=f"127.0.0.1:{forward_proxy.port}")
    both_hooks_list_repositories()
    through(forward_proxy, vbrain_conn, 2)


def test_both_hooks_send_the_credentials_of_the_environments_proxy(
    vbrain_conn: Any, password_proxy: Any, proxy_env: Any
) -> None:
    proxy_env(HTTP_PROXY=password_proxy.url)
    both_hooks_list_repositories()
    through(password_proxy, vbrain_conn, 2)
    assert password_proxy.refusals() == 0


def test_https_goes_through_the_environments_proxy_in_a_tunnel(
    tls_emulator: Any,
    tls_files: tuple[Path, Path],
    password_proxy: Any,
    proxy_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy_env(HTTPS_PROXY=password_proxy.url, HTTP_PROXY=f"http://127.0.0.1:{free_port()}")
    connect(monkeypatch, tls_emulator.url, verify=str(tls_files[0]))
    both_hooks_list_repositories()
    tunnels = password_proxy.forwarded(settle=5, at_least=2)
    assert [(t.method, t.destination) for t in tunnels] == [("CONNECT", host_of(tls_emulator.url))] * 2
    assert len(tls_emulator.requests()) == 2


def test_netrc_gives_neither_hook_the_proxys_credentials(
    vbrain_conn: Any,
    password_proxy: Any,
    proxy_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """requests reads ``~/.netrc`` for the server's credentials only, never a proxy's; aiohttp's
    own reading of the environment would have found the proxy's there."""
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login {PROXY_USER} password {PROXY_PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    proxy_env(HTTP_PROXY=password_proxy.url_with(None, None))
    connect(monkeypatch, vbrain_conn.url)  # two attempts
    with pytest.raises(VBrainConnectionError) as sync:
        VBrainHook().list_repositories()
    with pytest.raises(VBrainConnectionError) as aio:
        async_hook_lists_repositories()
    for caught in (sync, aio):
        assert "HTTP 407 Proxy Authentication Required" in str(caught.value)
    assert password_proxy.refusals() == 4  # two attempts each
    assert vbrain_conn.requests() == []


@pytest.mark.parametrize(
    ("variable", "proxy"),
    [
        pytest.param("HTTP_PROXY", f"socks5://{PROXY_USER}:{WRONG_PASSWORD}@127.0.0.1:1080", id="socks"),
        pytest.param("ALL_PROXY", f"http://{PROXY_USER}:{WRONG_PASSWORD}@[::1", id="not-a-url"),
    ],
)
def test_an_unusable_proxy_in_the_environment_is_refused_by_both_hooks(
    vbrain_conn: Any, proxy_env: Any, variable: str, proxy: str
) -> None:
    proxy_env(**{variable: proxy})
    if not (proxy.startswith("socks") and importlib.util.find_spec("socks")):  # PySocks: requests can
        with pytest.raises(VBrainInputError):
            VBrainHook().list_repositories()
    with pytest.raises(VBrainInputError) as aio:
        async_hook_lists_repositories()
    message = clean(str(aio.value))
    assert f"the proxy {variable} (or {variable.lower()}) names" in message
    assert proxy not in message
    assert vbrain_conn.requests() == []


async def test_the_next_request_follows_a_change_to_the_environment(
    vbrain_conn: Any, forward_proxy: Any, password_proxy: Any, proxy_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On one event loop (one session), as in a triggerer whose variables change under it; the
    connection's proxy extra wins over whatever they say."""
    hook = VBrainAsyncHook()
    connect(monkeypatch, vbrain_conn.url, conn_id="vbrain_extra", proxy=password_proxy.url)
    by_extra = VBrainAsyncHook(vbrain_conn_id="vbrain_extra")
    steps: list[tuple[dict[str, str], VBrainAsyncHook, Any]] = [
        ({}, hook, None),
        ({"HTTP_PROXY": forward_proxy.url}, hook, forward_proxy),
        ({"HTTP_PROXY": forward_proxy.url, "NO_PROXY": "127.0.0.1"}, hook, None),
        ({"http_proxy": password_proxy.url}, hook, password_proxy),
        ({"HTTP_PROXY": forward_proxy.url, "NO_PROXY": "*"}, by_extra, password_proxy),
        ({"ALL_PROXY": forward_proxy.url}, hook, forward_proxy),
    ]
    try:
        for variables, used, expected in steps:
            for name in PROXY_VARIABLES:
                monkeypatch.delenv(name, raising=False)
            proxy_env(**variables)
            forward_proxy.mark()
            password_proxy.mark()
            await used.list_repositories()
            for proxy in (forward_proxy, password_proxy):
                seen = proxy.forwarded(settle=5, at_least=1) if proxy is expected else proxy.forwarded(0.2)
                assert len(seen) == (proxy is expected), variables
    finally:
        await close_shared_session()
    assert len(vbrain_conn.requests()) == len(steps)


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A thread pool that counts the work handed to it."""

    submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(*args, **kwargs)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "NO_PROXY"])
async def test_polls_take_no_trip_to_a_thread_for_the_proxy(
    vbrain_conn: Any, forward_proxy: Any, proxy_env: Any, variable: str
) -> None:
    """Through the environment's proxy or past it: the first request looks it up in a thread, the
    next ones do not (aiohttp's own lookup took two trips on every request)."""
    proxy_env(HTTP_PROXY=forward_proxy.url, **({variable: "127.0.0.1"} if variable == "NO_PROXY" else {}))
    executor = CountingExecutor(max_workers=2)
    asyncio.get_running_loop().set_default_executor(executor)
    hook = VBrainAsyncHook()
    try:
        await hook.list_repositories()  # the connection and the route looked up
        first = executor.submitted
        for _ in range(10):
            await hook.list_repositories()
    finally:
        await close_shared_session()
    assert executor.submitted == first
    proxied = variable == "HTTP_PROXY"
    assert len(forward_proxy.forwarded(settle=5 if proxied else 0.5, at_least=11)) == (11 if proxied else 0)
    assert len(vbrain_conn.requests()) == 11
