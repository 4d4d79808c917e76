"""The rate limit: N API requests per second per API key, the rest answered 429 with Retry-After.

Over real HTTP against the session's emulator, plus the window's arithmetic on a fake clock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from vbrain_emulator.ratelimit import RateLimiter
from vbrain_emulator.state import EmulatorState

if TYPE_CHECKING:
    from conftest import Api


def _config(api: Api, **fields: Any) -> requests.Response:
    return requests.post(f"{api.server.url}/_emulator/config", json=fields, timeout=5)


def _statuses(api: Api, count: int) -> list[int]:
    return [api.get("/repository").status_code for _ in range(count)]


def _retry_after(response: requests.Response) -> int:
    value = response.headers["Retry-After"]
    assert value.isdigit(), value
    return int(value)


def test_the_limit_holds_within_a_window(api: Api) -> None:
    response = _config(api, rate_limit=3)
    assert response.status_code == 200
    assert response.json()["rate_limit"] == 3

    assert _statuses(api, 3) == [200, 200, 200]
    refused = api.get("/repository")
    assert refused.status_code == 429
    assert refused.json() == {"message": "Too Many Requests"}
    # A one-second window: the time left is at most a second, rounded up to whole seconds.
    assert _retry_after(refused) == 1
    # Every request is refused alike until the window ends, creates included.
    assert api.post("/repository").status_code == 429

    logged = api.server.requests()
    assert [(entry["method"], entry["status"]) for entry in logged] == [
        ("GET", 200),
        ("GET", 200),
        ("GET", 200),
        ("GET", 429),
        ("POST", 429),
    ]
    assert all(entry["fault"] is None for entry in logged)
    assert api.server.repositories() == []


def test_waiting_retry_after_lets_requests_through_again(api: Api) -> None:
    assert _config(api, rate_limit=2).status_code == 200
    assert _statuses(api, 2) == [200, 200]
    # Refused requests do not count: hammering the limit does not push the next window away.
    refusals = [api.get("/repository") for _ in range(5)]
    assert {response.status_code for response in refusals} == {429}
    time.sleep(_retry_after(refusals[-1]))
    assert _statuses(api, 3) == [200, 200, 429]


def test_tenants_are_independent(api: Api) -> None:
    assert _config(api, rate_limit=2).status_code == 200
    first = api.with_headers(**{"x-api-key": "first-key"})
    second = api.with_headers(**{"x-api-key": "second-key"})
    assert _statuses(first, 3) == [200, 200, 429]
    assert _statuses(second, 3) == [200, 200, 429]
    assert _statuses(first, 1) == [429]
    # The limit follows the API key, as an API gateway's does, whatever the scoping headers say.
    other_organization = first.with_headers(organization_id="globex", client_id="finance")
    assert _statuses(other_organization, 1) == [429]


def test_forbidden_requests_do_not_count(api: Api) -> None:
    assert _config(api, rate_limit=1).status_code == 200
    assert [api.get("/repository", drop=("x-api-key",)).status_code for _ in range(3)] == [403] * 3
    assert _statuses(api, 2) == [200, 429]


def test_null_or_zero_removes_the_limit_and_reset_clears_it(api: Api) -> None:
    config_url = f"{api.server.url}/_emulator/config"
    assert _config(api, rate_limit=1).status_code == 200
    assert _statuses(api, 2) == [200, 429]

    response = _config(api, rate_limit=None)
    assert response.status_code == 200
    assert response.json()["rate_limit"] is None
    assert _statuses(api, 20) == [200] * 20

    assert _config(api, rate_limit=1).status_code == 200
    # Changing other settings leaves the limit alone.
    assert _config(api, queue_seconds=0.5).json()["rate_limit"] == 1
    assert _config(api, rate_limit=0).json()["rate_limit"] is None
    assert _statuses(api, 20) == [200] * 20

    api.server.set_rate_limit(1)
    assert requests.get(config_url, timeout=5).json()["rate_limit"] == 1
    assert requests.post(f"{api.server.url}/_emulator/reset", timeout=5).status_code == 200
    assert requests.get(config_url, timeout=5).json()["rate_limit"] is None
    assert _statuses(api, 20) == [200] * 20


def test_control_routes_and_pages_are_never_limited(api: Api) -> None:
    ctl = f"{api.server.url}/_emulator"
    assert _config(api, rate_limit=1).status_code == 200
    assert _statuses(api, 2) == [200, 429]
    headers = {"x-api-key": "emulator-key"}
    # Each kind once: the whole test must fit in the one-second window the first request opened.
    for url in (f"{ctl}/config", f"{ctl}/requests", f"{ctl}/jobs", f"{api.server.url}/ui/"):
        assert requests.get(url, headers=headers, timeout=5).status_code == 200, url
    # Nor do control requests use up the API's window.
    assert _statuses(api, 1) == [429]


@pytest.mark.parametrize(
    "value",
    [-1, 1.5, "5", True, [3], {"per_second": 3}],
    ids=["negative", "fraction", "string", "bool", "list", "object"],
)
def test_bad_values_answer_400(api: Api, value: Any) -> None:
    response = _config(api, queue_seconds=7, rate_limit=value)
    assert response.status_code == 400
    assert "rate_limit must be a whole number" in response.json()["error"]
    # Nothing was applied, the valid field included.
    config = requests.get(f"{api.server.url}/_emulator/config", timeout=5).json()
    assert config == {"queue_seconds": 0.1, "run_seconds": 0.2, "rate_limit": None}
    with pytest.raises(ValueError, match="rate_limit"):
        api.server.set_rate_limit(value)


def test_unknown_config_field_names_the_expected_ones(api: Api) -> None:
    response = _config(api, rate=3)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Unknown config field(s): rate (expected queue_seconds, run_seconds, rate_limit)"
    )


# -- the window, on a fake clock ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_fixed_window_opened_by_the_first_request() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.admit("key") for _ in range(3)] == [None, None, None]
    clock.now = 100.2
    assert limiter.admit("key") == 1  # 0.8 s left, rounded up
    clock.now = 100.999
    assert limiter.admit("key") == 1
    # The window ends one second after it opened; refusals did not move it.
    clock.now = 101.0
    assert [limiter.admit("key") for _ in range(4)] == [None, None, None, 1]
    # The next window opens with the first request after the previous one ended, not on the clock's
    # second boundaries.
    clock.now = 102.5
    assert [limiter.admit("key") for _ in range(3)] == [None, None, None]
    clock.now = 103.4
    assert limiter.admit("key") == 1
    clock.now = 103.5
    assert limiter.admit("key") is None


def test_keys_have_their_own_windows() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    assert limiter.admit("a") is None
    clock.now = 100.5
    assert limiter.admit("a") == 1
    assert limiter.admit("b") is None
    clock.now = 101.0
    assert limiter.admit("a") is None
    assert limiter.admit("b") == 1


def test_no_limit_admits_everything_and_setting_starts_afresh() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    assert all(limiter.admit("key") is None for _ in range(10_000))
    limiter.set(1)
    assert [limiter.admit("key"), limiter.admit("key")] == [None, 1]
    limiter.set(2)
    assert [limiter.admit("key"), limiter.admit("key"), limiter.admit("key")] == [None, None, 1]
    limiter.set(0)
    assert limiter.per_second is None
    assert limiter.admit("key") is None


def test_many_keys_keep_their_open_windows() -> None:
    # Past 10,000 keys, ended windows are dropped to bound memory; an open window must survive that.
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock)
    for number in range(9_999):
        limiter.admit(f"key-{number}")
    clock.now = 100.6
    assert [limiter.admit("busy"), limiter.admit("busy")] == [None, 1]
    clock.now = 101.0
    assert limiter.admit("new") is None
    assert limiter.admit("busy") == 1
    assert limiter.admit("key-0") is None
    clock.now = 101.6
    assert limiter.admit("busy") is None


def test_state_rate_limit_from_the_start_survives_reset() -> None:
    state = EmulatorState(rate_limit=5)
    assert state.rate_limit == 5
    state.set_rate_limit(None)
    assert state.rate_limit is None
    state.reset()
    assert state.rate_limit == 5
    with pytest.raises(ValueError, match="rate_limit"):
        EmulatorState(rate_limit=-2)
