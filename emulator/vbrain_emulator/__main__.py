"""Command line: ``python -m vbrain_emulator`` (also installed as ``vbrain-emulator``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import signal
import ssl
import sys
import tempfile
from collections.abc import Sequence

from vbrain_emulator.app import UI_PREFIX, create_app
from vbrain_emulator.applications import register_application
from vbrain_emulator.profiles import PROFILES, Profile, ProfileError
from vbrain_emulator.ratelimit import parse_rate_limit
from vbrain_emulator.server import start_site, url_host
from vbrain_emulator.state import DEFAULT_QUEUE_SECONDS, DEFAULT_RUN_SECONDS, EmulatorState
from vbrain_emulator.tls import self_signed_certificate
from vbrain_emulator.wire import API_PREFIX

DEFAULT_PORT = 8765


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds: {text!r}")
    return value


def _rate_limit(text: str) -> int:
    try:
        value = int(text)
        parse_rate_limit(value)  # the control API's own check
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, 0 (no limit) or more: {text!r}") from None
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (its ``--help`` documents every flag)."""
    parser = argparse.ArgumentParser(
        prog="vbrain-emulator",
        description=(
            f"Serve a local emulator of the VBrain REST API (all endpoints under {API_PREFIX}, with the "
            "Tutorial and CsvSummary applications) for developing and testing DAGs offline."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        dest="api_keys",
        help="accept only this x-api-key (repeatable); without it any non-empty key is accepted",
    )
    parser.add_argument(
        "--queue-seconds",
        type=_seconds,
        default=DEFAULT_QUEUE_SECONDS,
        help="seconds a new job stays 'queued' (default: %(default)s; a job's metadata "
        "emulator_queue_seconds overrides it)",
    )
    parser.add_argument(
        "--run-seconds",
        type=_seconds,
        default=DEFAULT_RUN_SECONDS,
        help="seconds a job stays 'started' before it ends (default: %(default)s; a job's metadata "
        "emulator_run_seconds overrides it)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_limit,
        default=0,
        metavar="N",
        help="answer 429 Too Many Requests, with Retry-After, past N API requests per second per API key "
        "(default: 0, no limit; the control API's config changes it)",
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="enable the test control API under /_emulator (faults, request log, finish/fail jobs, reset)",
    )
    parser.add_argument(
        "--tls-cert", metavar="PEM", help="serve HTTPS with this certificate (needs --tls-key)"
    )
    parser.add_argument("--tls-key", metavar="PEM", help="private key of --tls-cert")
    parser.add_argument(
        "--tls-self-signed",
        action="store_true",
        help="serve HTTPS with a new self-signed certificate for localhost and 127.0.0.1; its path is "
        "printed, for clients to trust (the VBrain connection's verify extra)",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME",
        dest="profiles",
        help="answer by this reading of the API reference where it leaves things open (repeatable, "
        "or comma-separated, one per group; default: job-metadata). One of: " + ", ".join(PROFILES),
    )
    parser.add_argument(
        "--no-ui",
        action="store_false",
        dest="ui",
        help=f"do not serve the read-only job pages under {UI_PREFIX}/",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    parser.add_argument(
        "--application",
        action="append",
        default=[],
        metavar="NAME=MODULE:FUNCTION",
        help="also serve your own application: the function (params, input_files) -> ApplicationResult, "
        "imported from MODULE, runs as application_id NAME (repeatable)",
    )
    return parser


def _register(parser: argparse.ArgumentParser, specs: Sequence[str]) -> None:
    """Import and register each ``NAME=MODULE:FUNCTION`` given with ``--application``."""
    for spec in specs:
        name, _, target = spec.partition("=")
        module_name, _, function_name = target.partition(":")
        if not (name and module_name and function_name):
            parser.error(f"--application {spec!r}: expected NAME=MODULE:FUNCTION")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as err:
            parser.error(f"--application {spec!r}: {err}")
        register_application(name, function)


async def _serve(args: argparse.Namespace, ssl_context: ssl.SSLContext | None) -> None:
    state = EmulatorState(
        queue_seconds=args.queue_seconds,
        run_seconds=args.run_seconds,
        profile=args.profile,
        rate_limit=args.rate_limit,
    )
    app = create_app(state, api_keys=args.api_keys, control=args.control, ui=args.ui)
    runner, port = await start_site(
        app, args.host, args.port, ssl_context=ssl_context, access_log=not args.quiet
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Not available on Windows' event loop: Ctrl-C then arrives as KeyboardInterrupt in main().
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        scheme = "https" if ssl_context is not None else "http"
        url = f"{scheme}://{url_host(args.host)}:{port}"
        print(f"VBrain emulator listening on {url}", flush=True)
        if args.tls_self_signed:
            print(f"Clients trust its certificate with: {args.tls_cert}", flush=True)
        if state.profile != Profile():
            print(f"Reference profile: {state.profile}", flush=True)
        if state.rate_limit is not None:
            print(f"Rate limit: {state.rate_limit} requests per second per API key", flush=True)
        if args.ui:
            print(f"Job pages: {url}{UI_PREFIX}/ (job links: {url}{UI_PREFIX}/jobs/{{job_id}})", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until Ctrl-C or SIGTERM; return the exit status.

    :param argv: the arguments (without the program name); ``sys.argv[1:]`` when None.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _register(parser, args.application)
    try:
        args.profile = Profile.parse(args.profiles)
    except ProfileError as err:
        parser.error(f"--profile: {err}")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_self_signed:
        if args.tls_cert:
            parser.error("--tls-self-signed replaces --tls-cert and --tls-key")
        args.tls_cert, args.tls_key = self_signed_certificate(tempfile.mkdtemp(prefix="vbrain-emulator-tls-"))
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as err:
            parser.error(f"cannot load --tls-cert/--tls-key: {err}")
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        asyncio.run(_serve(args, ssl_context))
    except KeyboardInterrupt:
        pass
    except OSError as err:
        # Typically the port is taken: say so in one line rather than a traceback.
        print(f"vbrain-emulator: cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
