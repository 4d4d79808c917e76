"""The polling schedule: how far apart the polls of one wait are, and of a thousand waits together.

Driven with a simulated clock through the one wait loop (:class:`JobWait`), so what is checked is
what every mode does: a job that ends at any moment is seen within the stated bound, with far fewer
polls than a fixed interval makes, and waits that start together do not poll together.
"""

from __future__ import annotations

import collections
import logging
import random

import pytest

from airflow_provider_vbrain._client.polling import (
    DEFAULT_MAX_POLL_INTERVAL,
    LATENCY_SHARE,
    PollSchedule,
)
from airflow_provider_vbrain._client.waiting import JobWait
from airflow_provider_vbrain.jobs import EventStatus, JobEvent, JobStatus
from tests.core import jittered

LOG = logging.getLogger("tests.polling")
HOUR = 3600.0


def answer(state: str) -> JobStatus:
    return JobStatus.from_answer("job", "repo", 200 if state == "finished" else 202, {"job_status": state})


def run(
    job_id: str, ends_at: float, max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL
) -> tuple[int, float]:
    """Wait (simulated) on a job that ends ``ends_at`` seconds after the wait began, polling first at
    once as the blocking wait does; return the polls made and how late the end was seen."""
    now = [0.0]
    wait = JobWait(
        job_id,
        "repo",
        poll_interval=10,
        max_poll_interval=max_poll_interval,
        log=LOG,
        clock=lambda: now[0],
    )
    while True:
        step = wait.after(answer("finished" if now[0] >= ends_at else "started"))
        if isinstance(step, JobEvent):
            assert step.status is EventStatus.SUCCEEDED
            return wait.polls, now[0] - ends_at
        now[0] += step


@pytest.mark.parametrize("ends_at", [5, 59, 600, 3599, 4 * HOUR, 6 * HOUR])
def test_every_end_is_seen_within_a_tenth_of_the_run_time_and_the_cap(ends_at: float) -> None:
    for n in range(50):
        _, late = run(f"job-{n}", ends_at)
        bound = min(DEFAULT_MAX_POLL_INTERVAL, max(10.0, LATENCY_SHARE * ends_at))
        assert 0 <= late <= bound


@pytest.mark.parametrize("hours", [1, 6])
def test_long_jobs_are_asked_about_at_least_five_times_less_than_every_10_s(hours: int) -> None:
    adaptive = [run(f"job-{n}", hours * HOUR)[0] for n in range(20)]
    fixed = [run(f"job-{n}", hours * HOUR, max_poll_interval=None)[0] for n in range(20)]
    assert min(fixed) / max(adaptive) >= 5


def test_a_short_job_is_polled_as_often_as_before() -> None:
    polls, late = run("job-1", 60)
    assert polls <= 9  # every 7.5 to 10 s: no slower than a fixed 10 s interval
    assert late <= 10


def test_fixed_polling_is_one_argument_away() -> None:
    schedule = PollSchedule(10, None, "job-1")
    assert not schedule.adaptive
    assert {schedule.interval(w) for w in (0, HOUR, 10 * HOUR)} == {10}
    assert jittered([schedule.delay(HOUR, n) for n in range(1, 100)], 10)
    assert not PollSchedule(10, 10, "job-1").adaptive


def test_the_interval_grows_with_the_time_waited_up_to_the_cap() -> None:
    schedule = PollSchedule(10, 300, "job-1")
    intervals = [schedule.interval(w) for w in (0, 100, 1000, 2999, 3000, 10 * HOUR)]
    assert intervals == pytest.approx([10, 10, 100, 299.9, 300, 300])


def test_the_sleeps_depend_only_on_the_job_and_the_poll() -> None:
    """A trigger rebuilt by another triggerer sleeps as the first one would have."""
    one, again = PollSchedule(10, 300, "job-1"), PollSchedule(10, 300, "job-1")
    assert [one.delay(HOUR, n) for n in range(10)] == [again.delay(HOUR, n) for n in range(10)]
    assert one.first_delay(HOUR) == again.first_delay(HOUR)
    other = PollSchedule(10, 300, "job-2")
    assert [one.delay(HOUR, n) for n in range(10)] != [other.delay(HOUR, n) for n in range(10)]


@pytest.mark.parametrize(
    ("max_poll_interval", "restart_at"),
    [
        pytest.param(None, None, id="fixed"),
        pytest.param(DEFAULT_MAX_POLL_INTERVAL, None, id="adaptive"),
        pytest.param(DEFAULT_MAX_POLL_INTERVAL, 50.0, id="adaptive-triggerer-restarted"),
    ],
)
def test_waits_that_start_together_spread_over_the_interval(
    max_poll_interval: float | None, restart_at: float | None
) -> None:
    """A thousand triggers deferred in the same second (the triggerer restarted, all rebuilt at once,
    ``restart_at``), each polling on its own schedule: while the interval stays 10 s (the first
    100 s), no second carries more than 1.5 times the mean request rate."""
    polls: list[float] = []
    for n in range(1000):
        schedule = PollSchedule(10, max_poll_interval, f"{random.Random(n).getrandbits(128):032x}")
        now, count, restarted = schedule.first_delay(0), 0, restart_at is None
        while now < 100:
            if not restarted and now >= restart_at:  # rebuilt: the next poll is a first one again
                now, count, restarted = restart_at + schedule.first_delay(restart_at), 0, True
                continue
            polls.append(now)
            count += 1
            now += schedule.delay(now, count)
    per_second = collections.Counter(int(t) for t in polls if t < 100)
    assert max(per_second.values()) <= 1.5 * sum(per_second.values()) / 100
