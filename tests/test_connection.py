"""Reading the Airflow connection into settings, as users configure it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_vbrain.connection import VBrainSettings, header_value_problem
from airflow_provider_vbrain.exceptions import VBrainConfigError
from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from tests.conftest import API_KEY, connection_json


def settings_for(
    monkeypatch: pytest.MonkeyPatch, conn: str, conn_id: str = "vbrain_default"
) -> VBrainSettings:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn)
    return VBrainHook(conn_id).settings


def raw(**fields: Any) -> str:
    base: dict[str, Any] = {
        "conn_type": "vbrain",
        "host": "https://vbrain.example.com",
        "login": "ana",
        "password": API_KEY,
        "extra": {"organization_id": "acme", "client_id": "ops"},
    }
    base.update(fields)
    return json.dumps(base)


def test_the_contract_example_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, connection_json("http://127.0.0.1:8765"))
    assert settings.api_url == "http://127.0.0.1:8765/api/v1"
    assert (settings.username, settings.api_key) == ("ana", API_KEY)
    assert (settings.organization_id, settings.client_id, settings.application_id) == (
        "acme",
        "ops",
        "Tutorial",
    )
    assert (settings.timeout, settings.verify) == (60.0, True)
    assert API_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        pytest.param(None, "https://vbrain.visagio.com", id="empty-means-vbrain"),
        pytest.param("", "https://vbrain.visagio.com", id="blank"),
        pytest.param("vbrain.example.com", "https://vbrain.example.com", id="no-scheme-https"),
        pytest.param("http://localhost:8765/", "http://localhost:8765", id="trailing-slash"),
        pytest.param(
            "https://vbrain.example.com/api/v1", "https://vbrain.example.com", id="api-suffix-kept-once"
        ),
        pytest.param(
            "https://gw.example.com/vbrain/api/v1/", "https://gw.example.com/vbrain", id="path-prefix"
        ),
    ],
)
def test_base_url(monkeypatch: pytest.MonkeyPatch, host: str | None, base_url: str) -> None:
    assert settings_for(monkeypatch, raw(host=host)).base_url == base_url


def test_port_field_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_for(monkeypatch, raw(host="127.0.0.1", port=8765)).base_url == "https://127.0.0.1:8765"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"extra": {"client_id": "ops"}}, "extra organization_id", id="organization_id"),
        pytest.param({"extra": {"organization_id": "acme"}}, "extra client_id", id="client_id"),
        pytest.param(
            {"extra": {"organization_id": " ", "client_id": "ops"}}, "extra organization_id", id="blank"
        ),
        pytest.param({"login": None}, "login (username)", id="login"),
        pytest.param({"password": None}, "password (API key)", id="api-key"),
        pytest.param({"host": "ftp://vbrain.example.com"}, "host (base URL)", id="bad-scheme"),
        pytest.param({"host": "http://"}, "host (base URL)", id="no-host"),
        pytest.param({"host": "http://vbrain.example.com:port"}, "host (base URL)", id="bad-port"),
        pytest.param({"host": "https://vbrain.example.com/?x=1"}, "host (base URL)", id="query"),
        pytest.param(
            {"extra": {"organization_id": "a", "client_id": "b", "timeout": "soon"}},
            "extra timeout",
            id="timeout",
        ),
        pytest.param(
            {"extra": {"organization_id": "a", "client_id": "b", "timeout": 0}},
            "extra timeout",
            id="zero-timeout",
        ),
        pytest.param(
            {"extra": {"organization_id": "a", "client_id": "b", "retry_attempts": -1}},
            "extra retry_attempts",
            id="retry-attempts",
        ),
    ],
)
def test_bad_connections_name_the_connection_and_field(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], field: str
) -> None:
    with pytest.raises(VBrainConfigError) as caught:
        settings_for(monkeypatch, raw(**fields), conn_id="vbrain_prod")
    message = str(caught.value)
    assert message.startswith(f"VBrain connection 'vbrain_prod': {field}")
    assert caught.value.field == field
    assert API_KEY not in message


@pytest.mark.parametrize(
    ("verify", "expected"),
    [
        (None, True),
        (True, True),
        (False, False),
        ("false", False),
        ("True", True),
        ("/etc/ca.pem", "/etc/ca.pem"),
    ],
)
def test_verify(monkeypatch: pytest.MonkeyPatch, verify: Any, expected: Any) -> None:
    extra = {"organization_id": "a", "client_id": "b", "verify": verify}
    assert settings_for(monkeypatch, raw(extra=extra)).verify == expected


def test_timeout_and_retry_extras_accept_strings_from_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {
        "organization_id": "a",
        "client_id": "b",
        "timeout": "12.5",
        "retry_attempts": "2",
        "retry_base_delay": "0.5",
        "retry_max_delay": "4",
    }
    settings = settings_for(monkeypatch, raw(extra=extra))
    assert settings.timeout == 12.5
    assert (settings.retry.max_attempts, settings.retry.base_delay, settings.retry.max_delay) == (2, 0.5, 4.0)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param(None, 6 * 3600.0, id="default-six-hours"),
        pytest.param("", 6 * 3600.0, id="empty-is-the-default"),
        pytest.param("900", 900.0, id="text-from-the-ui"),
        pytest.param(1.5, 1.5, id="number"),
        pytest.param(" None ", None, id="none-is-no-limit"),
    ],
)
def test_download_timeout_extra(
    monkeypatch: pytest.MonkeyPatch, written: Any, expected: float | None
) -> None:
    extra = {"organization_id": "a", "client_id": "b", "download_timeout": written}
    settings = settings_for(monkeypatch, raw(extra=extra))
    assert settings.download_timeout == expected
    assert settings.timeout == 60.0, "API requests keep their own deadline"


def test_connection_is_read_once_and_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = VBrainHook("vbrain_lazy")  # no such connection yet: nothing is read at construction
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_LAZY", raw())
    first = hook.settings
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_LAZY", raw(login="someone-else"))
    assert hook.settings is first


def test_the_key_is_registered_with_the_secrets_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_vbrain._airflow.compat import find

    settings_for(monkeypatch, raw())
    redact = find(
        "redact",
        "airflow.sdk._shared.secrets_masker",  # 3.2+
        "airflow.sdk.execution_time.secrets_masker",  # 3.0, 3.1
        "airflow.utils.log.secrets_masker",  # 2.x
    )
    assert API_KEY not in str(redact(f"header x-api-key={API_KEY}"))


# ---------------------------------------------------------------- what the connection form writes


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param({}, (60.0, True, 5, 1.0, 30.0), id="absent"),
        pytest.param(
            {"timeout": None, "verify": None, "retry_attempts": None, "retry_base_delay": None},
            (60.0, True, 5, 1.0, 30.0),
            id="nulls-from-emptied-fields",
        ),
        pytest.param(
            {"timeout": "", "verify": " ", "retry_attempts": "", "retry_max_delay": ""},
            (60.0, True, 5, 1.0, 30.0),
            id="empty-strings",
        ),
        pytest.param(
            {
                "timeout": 12.5,
                "verify": False,
                "retry_attempts": 2,
                "retry_base_delay": 0.5,
                "retry_max_delay": 4,
            },
            (12.5, False, 2, 0.5, 4.0),
            id="typed-numbers-and-switch",
        ),
        pytest.param(
            {"timeout": " 12.5 ", "verify": "/etc/ca.pem", "retry_attempts": "2.0", "retry_max_delay": "4"},
            (12.5, "/etc/ca.pem", 2, 1.0, 4.0),
            id="text-numbers-and-a-ca-path",
        ),
    ],
)
def test_what_the_form_writes_is_read(
    monkeypatch: pytest.MonkeyPatch, written: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    extra = {"organization_id": "a", "client_id": "b", "application_id": None, **written}
    settings = settings_for(monkeypatch, raw(extra=extra))
    retry = settings.retry
    assert (
        settings.timeout,
        settings.verify,
        retry.max_attempts,
        retry.base_delay,
        retry.max_delay,
    ) == expected
    assert settings.application_id is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        pytest.param({"retry_attempts": 2.5}, "extra retry_attempts", id="fractional-attempts"),
        pytest.param({"timeout": True}, "extra timeout", id="switch-as-timeout"),
        pytest.param({"timeout": "inf"}, "extra timeout", id="infinite-timeout"),
        pytest.param({"verify": ["a"]}, "extra verify", id="verify-list"),
        pytest.param({"max_answer_bytes": 0}, "extra max_answer_bytes", id="zero-answer-cap"),
        pytest.param({"max_answer_bytes": "1.5"}, "extra max_answer_bytes", id="fractional-answer-cap"),
        pytest.param({"max_download_bytes": "lots"}, "extra max_download_bytes", id="download-cap-text"),
        pytest.param({"max_download_bytes": "nan"}, "extra max_download_bytes", id="download-cap-nan"),
        pytest.param({"download_timeout": 0}, "extra download_timeout", id="zero-download-timeout"),
        pytest.param({"download_timeout": "later"}, "extra download_timeout", id="download-timeout-text"),
    ],
)
def test_values_no_field_can_mean_are_refused(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], field: str
) -> None:
    with pytest.raises(VBrainConfigError) as caught:
        settings_for(monkeypatch, raw(extra={"organization_id": "a", "client_id": "b", **extra}))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param({}, (8 * 1024 * 1024, None), id="defaults"),
        pytest.param(
            {"max_answer_bytes": "", "max_download_bytes": None}, (8 * 1024 * 1024, None), id="emptied"
        ),
        pytest.param({"max_answer_bytes": "65536", "max_download_bytes": 1e9}, (65536, 10**9), id="set"),
    ],
)
def test_size_caps_are_read(
    monkeypatch: pytest.MonkeyPatch, written: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    settings = settings_for(monkeypatch, raw(extra={"organization_id": "a", "client_id": "b", **written}))
    assert (settings.max_answer_bytes, settings.max_download_bytes) == expected


def test_port_field_agreeing_with_the_url_is_fine_and_a_conflict_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    same = raw(host="http://127.0.0.1:8765", port=8765)
    assert settings_for(monkeypatch, same).base_url == "http://127.0.0.1:8765"
    with pytest.raises(
        VBrainConfigError, match=r"port is 9000 but the base URL 'http://127.0.0.1:8765' says 8765"
    ):
        settings_for(monkeypatch, raw(host="http://127.0.0.1:8765", port=9000))


def template(value: Any) -> str:
    return raw(extra={"organization_id": "acme co", "client_id": "ops", "job_url_template": value})


def test_job_url_template_fills_every_placeholder_url_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(
        monkeypatch,
        template(
            "https://vbrain.example.com/{organization_id}/{client_id}/{application_id}"
            "/repositories/{repository_id}/jobs/{job_id}?x={{literal}}"
        ),
    )
    url = settings.job_web_url("j/../1", "202009231629398695", "Tutorial")
    assert url == (
        "https://vbrain.example.com/acme%20co/ops/Tutorial/repositories/202009231629398695"
        "/jobs/j%2F..%2F1?x={literal}"
    )


@pytest.mark.parametrize("value", [None, "", "  "])
def test_no_job_url_template_means_no_link(monkeypatch: pytest.MonkeyPatch, value: Any) -> None:
    assert settings_for(monkeypatch, template(value)).job_web_url("j", "r", "Tutorial") is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(
            "https://v.example.com/{job}", "has an unknown placeholder {job}; use {job_id}, ", id="typo"
        ),
        pytest.param("https://v.example.com/{api_key}", "has an unknown placeholder {api_key}", id="secret"),
        pytest.param(
            "https://v.example.com/{password}", "has an unknown placeholder {password}", id="password"
        ),
        pytest.param("https://v.example.com/{}", "has an unknown placeholder {}", id="positional"),
        pytest.param(
            "https://v.example.com/{job_id.__class__}",
            "unknown placeholder {job_id.__class__}",
            id="attribute",
        ),
        pytest.param("https://v.example.com/{job_id!r}", "unknown placeholder {job_id!r}", id="conversion"),
        pytest.param("https://v.example.com/{job_id:>40}", "unknown placeholder {job_id:>40}", id="format"),
        pytest.param("https://v.example.com/{job_id", "is not a valid template", id="unbalanced"),
        pytest.param("javascript:alert({job_id})", "must be an http(s) address", id="scheme"),
        pytest.param("/jobs/{job_id}", "must be an http(s) address", id="relative"),
        pytest.param("https://ana:pw@v.example.com/{job_id}", "must not hold credentials", id="credentials"),
    ],
)
def test_bad_job_url_templates_name_the_field(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    with pytest.raises(VBrainConfigError) as caught:
        settings_for(monkeypatch, template(value), conn_id="vbrain_prod")
    assert caught.value.field == "extra job_url_template"
    assert str(caught.value).startswith("VBrain connection 'vbrain_prod': extra job_url_template ")
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("repo-1", None, id="ascii"),
        pytest.param("répo-ü", None, id="latin-1"),
        pytest.param(" repo-1", "whitespace", id="leading-space"),
        pytest.param("repo-1 ", "whitespace", id="trailing-space"),
        pytest.param("repo\n1", "control character", id="newline"),
        pytest.param("repo-€", "latin-1", id="euro"),
    ],
)
def test_header_values_one_rule(value: str, problem: str | None) -> None:
    found = header_value_problem(value)
    assert found is None if problem is None else problem in (found or "")


@pytest.mark.parametrize(
    "host",
    ["https://ana:secret-key@vbrain.example.com", "htps://ana:sec/ret@host", "ana:secret@host//api"],
)
def test_credentials_in_the_host_are_refused_unechoed(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    with pytest.raises(VBrainConfigError, match="credentials") as caught:
        settings_for(monkeypatch, connection_json("http://x", host=host))
    assert "sec" not in str(caught.value)
    assert "sec" not in repr(caught.value.args)


# ---------------------------------------------------------------- proxy and User-Agent

PROXY_PASSWORD = "pr0xy-s3cret/@:%-7e6d"


def proxied(value: Any) -> str:
    return raw(extra={"organization_id": "acme", "client_id": "ops", "proxy": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="unset"),
        pytest.param("", None, id="emptied"),
        pytest.param("http://proxy.example.com:3128", "http://proxy.example.com:3128", id="http"),
        pytest.param(" https://10.0.0.1/ ", "https://10.0.0.1/", id="https-ip-stripped"),
        pytest.param("http://ana:pw%40x@proxy:3128", "http://ana:pw%40x@proxy:3128", id="credentials"),
    ],
)
def test_the_proxy_extra_is_read(monkeypatch: pytest.MonkeyPatch, value: Any, expected: Any) -> None:
    assert settings_for(monkeypatch, proxied(value)).proxy == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param(f"socks5://ana:{PROXY_PASSWORD}@proxy:1080", "http:// or https://", id="socks"),
        pytest.param(f"ana:{PROXY_PASSWORD}@proxy:3128", "http:// or https://", id="no-scheme"),
        pytest.param("http://ana:s3cret@proxy:99999", "port", id="port-out-of-range"),
        pytest.param("http://ana:s3cret@proxy:3128/path", "path", id="path"),
        pytest.param(f"http://ana:{PROXY_PASSWORD}@proxy:3128", "percent-encoded", id="unencoded-password"),
        pytest.param(f"http://ana:{PROXY_PASSWORD} x@proxy:3128", "spaces", id="space"),
        pytest.param(f"http://ana:{PROXY_PASSWORD}\n@proxy:3128", "control", id="newline"),
        pytest.param(3128, "must be a URL", id="a-number"),
    ],
)
def test_a_bad_proxy_names_the_field_and_never_echoes_the_url(
    monkeypatch: pytest.MonkeyPatch, value: Any, problem: str
) -> None:
    with pytest.raises(VBrainConfigError) as caught:
        settings_for(monkeypatch, proxied(value), conn_id="vbrain_prod")
    assert caught.value.field == "extra proxy"
    assert str(caught.value).startswith("VBrain connection 'vbrain_prod': extra proxy ")
    assert problem in str(caught.value)
    for shown in (str(caught.value), repr(caught.value.args)):
        assert "s3cret" not in shown
        assert "proxy:" not in shown


def test_the_proxy_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.parse import quote

    from airflow_provider_vbrain._airflow.compat import find

    url = f"http://ana:{quote(PROXY_PASSWORD, safe='')}@proxy.example.com:3128"
    settings = settings_for(monkeypatch, proxied(url))
    assert settings.proxy == url
    assert "s3cret" not in repr(settings)
    assert "proxy.example.com" not in repr(settings)
    assert set(settings.secrets) == {API_KEY, url, quote(PROXY_PASSWORD, safe=""), PROXY_PASSWORD}
    # Registered with Airflow's secrets masker as read: the whole URL and the password alike.
    redact = find(
        "redact",
        "airflow.sdk._shared.secrets_masker",  # 3.2+
        "airflow.sdk.execution_time.secrets_masker",  # 3.0, 3.1
        "airflow.utils.log.secrets_masker",  # 2.x
    )
    masked = str(redact(f"via {url}; the password {PROXY_PASSWORD}"))
    assert "s3cret" not in masked
    assert "proxy.example.com" not in masked


def test_settings_carry_the_user_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    import airflow

    import airflow_provider_vbrain

    settings = settings_for(monkeypatch, raw())
    expected = (
        f"airflow-provider-vbrain/{airflow_provider_vbrain.__version__} Airflow/{airflow.__version__} "
        f"Python/{platform.python_version()}"
    )
    assert settings.user_agent == expected
    assert settings.headers("Tutorial")["user-agent"] == expected
