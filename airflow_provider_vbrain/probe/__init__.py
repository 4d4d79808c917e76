"""``vbrain-probe``: what a VBrain server does where its reference is silent, and what that means.

Run it once against a new VBrain account, with the Airflow connection your DAGs use::

    vbrain-probe --conn-id vbrain_default
    python -m airflow_provider_vbrain.probe --conn-id vbrain_default --other-application CsvSummary

It lists repositories (with the connection's key and with a made-up one), creates two small
repositories (one with form-data, one with a JSON body), submits **one job** (``--job-params``,
the Tutorial's ``{"a": 10, "b": 20}`` by default: it costs compute), waits for it at most
``--job-timeout`` seconds, reads it back every way the operators do, and deletes everything it
created, also when a check fails or it is interrupted (Ctrl-C, SIGTERM). It prints a table of
what the server did and what that means for the operators' settings, and exits 1 when the
provider cannot work with this server (or something could not be deleted), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

#: Exit statuses: every check passed or only warned; the provider cannot work; interrupted.
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object, e.g. \'{"a": 1, "b": 1}\'')
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(
        prog="vbrain-probe",
        description="Check what a VBrain server does where the API reference is silent, and what that "
        "means for the provider's settings. Submits one small job (it costs compute) and deletes "
        "everything it creates.",
    )
    cli.add_argument(
        "--conn-id", default="vbrain_default", help="the Airflow connection to probe (default: %(default)s)"
    )
    cli.add_argument("--application-id", help="the application to run (default: the connection's)")
    cli.add_argument(
        "--other-application",
        metavar="NAME",
        help="also check whether repositories are visible under this other application",
    )
    cli.add_argument(
        "--job-params",
        type=_json_object,
        default=None,
        help='the params of the one job submitted (default: the Tutorial\'s {"a": 10, "b": 20})',
    )
    cli.add_argument(
        "--job-timeout", type=_seconds, default=300.0, help="seconds to wait for the job (default: 300)"
    )
    cli.add_argument(
        "--poll-interval", type=_seconds, default=5.0, help="seconds between job status polls (default: 5)"
    )
    cli.add_argument(
        "--listing-timeout",
        type=_seconds,
        default=60.0,
        help="seconds to wait for a new repository or job to be listed (default: 60)",
    )
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run the probe and print its table; return the exit status."""
    args = parser().parse_args(argv)
    # Imported here: Airflow takes seconds to import, and --help needs none of it.
    from airflow.exceptions import AirflowException

    from airflow_provider_vbrain.probe._base import INTERRUPTED, ProbeHook
    from airflow_provider_vbrain.probe._checks import TUTORIAL_PARAMS, Options, Probe, progress

    options = Options(
        job_params=TUTORIAL_PARAMS if args.job_params is None else args.job_params,
        other_application=args.other_application,
        job_timeout=args.job_timeout,
        poll_interval=args.poll_interval,
        listing_timeout=args.listing_timeout,
    )
    hook = ProbeHook(args.conn_id, application_id=args.application_id)
    try:
        settings = hook.settings
        application = args.application_id or settings.application_id or "(none set)"
    except AirflowException as err:  # a missing connection, or one the provider cannot read
        print(f"vbrain-probe: cannot use connection {args.conn_id!r}: {err}", file=sys.stderr)
        return EXIT_FAILED
    probe = Probe(hook, options)
    print(
        f"VBrain probe {probe.run_id} of {settings.base_url} (connection {args.conn_id}): organization "
        f"{settings.organization_id}, client {settings.client_id}, application {application}, "
        f"user {settings.username}\n",
        flush=True,
    )
    interrupted = False
    with _signals_interrupt(INTERRUPTED):
        try:
            probe.run()
        except KeyboardInterrupt:
            INTERRUPTED.clear()
            interrupted = True
            progress("interrupted: deleting what was created")
        finally:  # also when a check raised something unexpected
            try:
                left = probe.cleanup()
            except KeyboardInterrupt:
                INTERRUPTED.clear()
                interrupted = True
                left = probe.repositories  # what was not deleted yet
                progress("interrupted again while cleaning up")
    print(probe.report.table())
    if left:
        print(f"\nLeft behind (delete by hand): repositories {', '.join(left)}")
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if probe.report.failed or left else EXIT_OK


class _signals_interrupt:
    """While active, Ctrl-C (unless ignored, as in the background of a script) and SIGTERM interrupt
    the probe, so the clean-up runs; the signal is also remembered in ``received``, for the probe's
    interruption points (see ``_base.interruption_point``)."""

    def __init__(self, received: threading.Event) -> None:
        self.received = received

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.received.set()
        raise KeyboardInterrupt

    def __enter__(self) -> None:
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
                continue
            self.previous[sig] = signal.signal(sig, self._interrupt)

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self.previous.items():
            signal.signal(sig, previous)
