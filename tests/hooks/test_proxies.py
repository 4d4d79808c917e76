"""Both hooks through a real forward proxy (proxy.py): from the environment or the connection's
``proxy`` extra, plain HTTP and HTTPS through CONNECT; and the User-Agent every request carries."""

from __future__ import annotations

import platform
import re
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_vbrain
from airflow_provider_vbrain._transport.aio import close_shared_session
from airflow_provider_vbrain.exceptions import VBrainConnectionError, VBrainMaybeCreatedError
from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook, VBrainHook
from tests.conftest import PROXY_PASSWORD, PROXY_USER, connection_json, key_leaks, proxy_password_leaks

#: Fast retries, two attempts: failures end quickly and show that they were (or not) retried.
FAST = {"retry_attempts": 2, "retry_base_delay": 0.01, "retry_max_delay": 0.05}
#: A wrong password that holds the right one, so a leak of either shows.
WRONG_PASSWORD = "not-" + PROXY_PASSWORD


def expected_user_agent() -> str:
    import airflow

    version = airflow_provider_vbrain.__version__
    return (
        f"airflow-provider-vbrain/{version} Airflow/{airflow.__version__} Python/{platform.python_version()}"
    )


def connect(monkeypatch: pytest.MonkeyPatch, url: str, conn_id: str = "vbrain_default", **extra: Any) -> None:
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    monkeypatch.setenv(variable, connection_json(url, extra={**FAST, **extra}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_of(url: str) -> str:
    return url.split("://", 1)[1].rstrip("/")


def both_hooks_list_repositories() -> None:
    """One request of each hook: the sync hook's, then the async hook's on a loop of its own."""
    VBrainHook().list_repositories()
    async_hook_lists_repositories()


def async_hook_lists_repositories() -> None:
    """One listing of the async hook, on a loop of its own."""
    import asyncio

    async def list_async() -> None:
        try:
            await VBrainAsyncHook().list_repositories()
        finally:
            await close_shared_session()

    asyncio.run(list_async())


def clean(text: str) -> str:
    assert not proxy_password_leaks(text), text
    assert not key_leaks(text), text
    return text


# ---------------------------------------------------------------- User-Agent


def test_both_hooks_send_our_user_agent(vbrain_conn: Any) -> None:
    both_hooks_list_repositories()
    agent = expected_user_agent()
    assert re.fullmatch(r"airflow-provider-vbrain/\S+ Airflow/\d+\.\d+\.\S+ Python/3\.\d+\.\S+", agent)
    assert [r["user_agent"] for r in vbrain_conn.requests()] == [agent, agent]


# ---------------------------------------------------------------- proxies from the environment


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_both_hooks_follow_the_environments_proxy(
    vbrain_conn: Any, forward_proxy: Any, proxy_env: Any, variable: str
) -> None:
    proxy_env(**{variable: forward_proxy.url})
    both_hooks_list_repositories()
    forwarded = forward_proxy.forwarded(settle=5, at_least=2)
    target = host_of(vbrain_conn.url)
    assert [(f.method, f.destination, f.path) for f in forwarded] == [
        ("GET", target, "/api/v1/repository")
    ] * 2
    assert len(vbrain_conn.requests()) == 2


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "localhost,127.0.0.1", "*"])
def test_no_proxy_sends_both_hooks_past_the_environments_proxy(
    vbrain_conn: Any, forward_proxy: Any, proxy_env: Any, no_proxy: str
) -> None:
    proxy_env(HTTP_PROXY=forward_proxy.url, HTTPS_PROXY=forward_proxy.url, NO_PROXY=no_proxy)
    both_hooks_list_repositories()
    assert len(vbrain_conn.requests()) == 2
    assert forward_proxy.forwarded(settle=0.5) == []


# ---------------------------------------------------------------- the connection's proxy extra


def test_the_proxy_extra_overrides_the_environment_and_no_proxy(
    vbrain_conn: Any, password_proxy: Any, proxy_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    proxy_env(HTTP_PROXY=nowhere, HTTPS_PROXY=nowhere, NO_PROXY="127.0.0.1")
    connect(monkeypatch, vbrain_conn.url, proxy=password_proxy.url)
    both_hooks_list_repositories()
    forwarded = password_proxy.forwarded(settle=5, at_least=2)
    assert [(f.method, f.path) for f in forwarded] == [("GET", "/api/v1/repository")] * 2
    assert password_proxy.refusals() == 0


def test_a_wrong_proxy_password_fails_sync_saying_407_never_showing_it(
    vbrain_conn: Any, password_proxy: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    connect(monkeypatch, vbrain_conn.url, proxy=password_proxy.url_with(PROXY_USER, WRONG_PASSWORD))
    hook = VBrainHook()
    with pytest.raises(VBrainConnectionError) as caught:
        hook.list_repositories()
    message = clean(str(caught.value))
    assert "the proxy refused the request: HTTP 407 Proxy Authentication Required" in message
    assert (caught.value.kind, caught.value.attempts) == ("could not connect", 2)
    clean(repr(caught.value.args) + repr(hook.settings) + caplog.text)
    assert password_proxy.refusals() == 2
    assert vbrain_conn.requests() == []


async def test_a_wrong_proxy_password_fails_async_saying_407_never_showing_it(
    vbrain_conn: Any, password_proxy: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    connect(monkeypatch, vbrain_conn.url, proxy=password_proxy.url_with(PROXY_USER, WRONG_PASSWORD))
    try:
        with pytest.raises(VBrainConnectionError) as caught:
            await VBrainAsyncHook().get_job_status("job-1", "repo-1")
    finally:
        await close_shared_session()
    message = clean(str(caught.value))
    assert "the proxy refused the request: HTTP 407 Proxy Authentication Required" in message
    assert (caught.value.kind, caught.value.attempts) == ("could not connect", 2)
    clean(repr(caught.value.args) + caplog.text)
    assert password_proxy.refusals() == 2
    assert vbrain_conn.requests() == []


def test_an_unreachable_proxy_could_not_connect_so_a_create_is_no_maybe(
    vbrain_conn: Any, proxy_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    connect(monkeypatch, vbrain_conn.url, proxy=f"http://{PROXY_USER}:s3cret%2Fx@127.0.0.1:{port}")
    hook = VBrainHook()
    with pytest.raises(VBrainConnectionError) as listing:
        hook.list_repositories()
    with pytest.raises(VBrainConnectionError) as create:
        hook.execute_job("202601011200000000", {"a": 1, "b": 2})
    assert not isinstance(create.value, VBrainMaybeCreatedError)
    for caught in (listing, create):
        assert (caught.value.kind, caught.value.attempts) == ("could not connect", 2)
        message = clean(str(caught.value))
        assert f"the proxy at 127.0.0.1:{port} failed before the request reached VBrain" in message
    assert vbrain_conn.requests() == []


async def test_an_unreachable_proxy_could_not_connect_async(
    vbrain_conn: Any, proxy_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    connect(monkeypatch, vbrain_conn.url, proxy=f"http://{PROXY_USER}:s3cret%2Fx@127.0.0.1:{port}")
    try:
        with pytest.raises(VBrainConnectionError) as caught:
            await VBrainAsyncHook().get_job_status("job-1", "repo-1")
    finally:
        await close_shared_session()
    assert (caught.value.kind, caught.value.attempts) == ("could not connect", 2)
    assert f"the proxy at 127.0.0.1:{port} could not be reached" in clean(str(caught.value))


def test_the_test_button_names_a_failing_proxy(
    vbrain_conn: Any, password_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, vbrain_conn.url, proxy=password_proxy.url_with(PROXY_USER, WRONG_PASSWORD))
    ok, message = VBrainHook().test_connection()
    assert not ok
    assert clean(message).startswith(
        "This VBrain connection failed. Check Proxy URL (its host, port and credentials)"
    )
    assert "HTTP 407" in message
    connect(monkeypatch, vbrain_conn.url, proxy=password_proxy.url)
    assert VBrainHook().test_connection()[0]


# ---------------------------------------------------------------- HTTPS through CONNECT


def test_https_goes_through_a_connect_tunnel(
    tls_emulator: Any, tls_files: tuple[Path, Path], password_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect(monkeypatch, tls_emulator.url, proxy=password_proxy.url, verify=str(tls_files[0]))
    both_hooks_list_repositories()
    tunnels = password_proxy.forwarded(settle=5, at_least=2)
    assert [(t.method, t.destination, t.path) for t in tunnels] == [
        ("CONNECT", host_of(tls_emulator.url), None)
    ] * 2
    assert [r["user_agent"] for r in tls_emulator.requests()] == [expected_user_agent()] * 2


def test_a_refused_tunnel_could_not_connect_in_both_hooks(
    tls_emulator: Any, tls_files: tuple[Path, Path], password_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 407 to CONNECT: requests raises its ProxyError, aiohttp its ClientHttpProxyError (whose text
    holds the proxy's URL, password included)."""
    import asyncio

    wrong = password_proxy.url_with(PROXY_USER, WRONG_PASSWORD)
    connect(monkeypatch, tls_emulator.url, proxy=wrong, verify=str(tls_files[0]))
    with pytest.raises(VBrainConnectionError) as sync:
        VBrainHook().execute_job("202601011200000000", {"a": 1})
    assert not isinstance(sync.value, VBrainMaybeCreatedError)
    assert "407 Proxy Authentication Required" in clean(str(sync.value))

    async def status() -> None:
        try:
            await VBrainAsyncHook().get_job_status("job-1", "repo-1")
        finally:
            await close_shared_session()

    with pytest.raises(VBrainConnectionError) as aio:
        asyncio.run(status())
    assert "the proxy refused the CONNECT tunnel: HTTP 407 Proxy Authentication Required" in clean(
        str(aio.value)
    )
    for caught in (sync, aio):
        assert (caught.value.kind, caught.value.attempts) == ("could not connect", 2)
        clean(repr(caught.value.args))
    assert tls_emulator.requests() == []


# ---------------------------------------------------------------- classifying proxy errors

TUNNEL_REFUSED = "Tunnel connection failed: 407 Proxy Authentication Required"


def proxy_error(cause: BaseException) -> Exception:
    """What requests raises when urllib3 gives up on a proxy: ProxyError(MaxRetryError(ProxyError))."""
    import requests
    import urllib3

    reason = urllib3.exceptions.ProxyError("Unable to connect to proxy", cause)
    retries = urllib3.exceptions.MaxRetryError(None, "/api/v1/job", reason)  # type: ignore[arg-type]
    return requests.exceptions.ProxyError(retries)


@pytest.mark.parametrize(
    ("urllib3_version", "cause", "kind"),
    [
        pytest.param("2.2.3", OSError(TUNNEL_REFUSED), "could not connect", id="tunnel-refused"),
        pytest.param("2.2.3", ConnectionResetError("reset"), "could not connect", id="urllib3-2-any-cause"),
        pytest.param(
            "2.2.3", ssl.SSLError("WRONG_VERSION_NUMBER"), "TLS handshake failed", id="tls-to-proxy"
        ),
        pytest.param("1.26.18", OSError(TUNNEL_REFUSED), "could not connect", id="1.26-tunnel-refused"),
        pytest.param("1.26.18", ssl.SSLError("WRONG_VERSION_NUMBER"), "TLS handshake failed", id="1.26-tls"),
        # urllib3 1.26 says ProxyError for a connection to the proxy lost after the request went out too.
        pytest.param(
            "1.26.18", ConnectionResetError("reset"), "connection lost", id="1.26-lost-after-sending"
        ),
    ],
)
def test_requests_proxy_errors_are_classified_by_when_they_happened(
    monkeypatch: pytest.MonkeyPatch, urllib3_version: str, cause: BaseException, kind: str
) -> None:
    import urllib3

    from airflow_provider_vbrain._transport.sync import classify

    monkeypatch.setattr(urllib3, "__version__", urllib3_version)
    failure = classify(proxy_error(cause))
    assert failure.kind.value == kind
    if kind == "connection lost":  # it may have been forwarded: a create is not repeated
        assert failure.may_have_been_processed
    else:
        assert "proxy" in failure.reason
        assert not failure.may_have_been_processed
