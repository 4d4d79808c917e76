"""Run one client call in a child process, watched: how long it took, how much memory it grew, what it
raised, and whether the API key shows anywhere a user could see it.

The children fork from a server process that imported Airflow and the provider once (multiprocessing's
``forkserver``), so a probe costs milliseconds, not an Airflow import. The parent samples the child's
resident set from ``/proc`` and kills it past the memory bound or the time bound: a call that hangs or
balloons (what a hostile server provokes) fails its test instead of the machine.

Only the provider's public names are used: the hooks, the trigger, their methods.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import multiprocessing
import os
import re
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection, wait
from typing import Any

#: Growth of the child's resident set (over its size just before the call) that gets it killed.
MEMORY_LIMIT_MB = 300
#: Asyncio reports each callback that holds the event loop longer than this (seconds).
SLOW_CALLBACK = 0.05
#: What the child keeps of long texts (messages, logs) for the report; leak checks see the whole text.
_CLIP = 4000
#: The test running now, and every report so far (written out when ``VBRAIN_HOSTILE_REPORT`` is set).
CURRENT_TEST = ""
RECORDED: list[dict[str, Any]] = []
_SLOW_RE = re.compile(r"Executing (.*) took (\d+(?:\.\d+)?) seconds", re.DOTALL)
# The modules each child would otherwise import itself. The suite's conftest comes first: importing
# it sets Airflow's home and drops AIRFLOW_CONN_VBRAIN_DEFAULT, which must happen before a child sets
# its connections, not after.
_PRELOAD = [
    "tests.conftest",
    "tests.hostile.probe",
    # Airflow 3 imports this on the first asynchronous connection read (0.1 s on the event loop); a
    # real triggerer has it already. Airflow 2 has no such module: the fork server skips it.
    "airflow.sdk.execution_time.supervisor",
    "airflow_provider_vbrain.hooks.vbrain",
    "airflow_provider_vbrain.triggers.vbrain",
    "tests.hostile._warm",
    "aiohttp",
    "requests",
]


class Killed(str, enum.Enum):
    """Why the watchdog stopped a child."""

    TIME = "time bound"
    MEMORY = "memory bound"
    CRASH = "died without a report"


@dataclasses.dataclass(frozen=True)
class Call:
    """What the child runs.

    :param kind: ``sync`` (a :class:`VBrainHook` method), ``async`` (a :class:`VBrainAsyncHook`
        method on a fresh event loop), ``trigger`` (:class:`VBrainJobTrigger` run until its first
        event) or ``function`` (``method`` names a module-level function ``module:name``).
    :param method: the hook method, or ``module:name``.
    :param args: positional arguments.
    :param kwargs: keyword arguments (the trigger's constructor arguments for ``trigger``).
    :param hook: keyword arguments of the hook's constructor.
    """

    kind: str
    method: str = ""
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    hook: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        if self.kind == "trigger":
            return "VBrainJobTrigger.run()"
        owner = {"sync": "VBrainHook.", "async": "VBrainAsyncHook."}.get(self.kind, "")
        return f"{owner}{self.method}()"


@dataclasses.dataclass(frozen=True)
class Nested:
    """An argument built in the child: a JSON object nested ``depth`` levels deep (too deep to pickle)."""

    depth: int

    def build(self) -> dict[str, Any]:
        value: dict[str, Any] = {"leaf": 1}
        for _ in range(self.depth):
            value = {"a": value}
        return value


def _built(value: Any) -> Any:
    return value.build() if isinstance(value, Nested) else value


@dataclasses.dataclass
class Report:
    """What happened to one call."""

    call: str
    #: ``returned``, ``raised`` or ``killed``.
    outcome: str
    killed: Killed | None = None
    #: Seconds the call took, as the child measured it (the wall time when killed).
    elapsed: float = 0.0
    #: Peak growth of the resident set over its size when the call started, in MB.
    peak_mb: float = 0.0
    #: A JSON-able form of the returned value (a trigger's first event payload).
    value: Any = None
    #: The length of a returned string (the value itself is clipped).
    value_length: int = 0
    #: The raised exception (or an exception the call returned): type, MRO, text, chain.
    error: dict[str, Any] | None = None
    #: Where the API key showed: ``message``, ``args``, ``chain``, ``logs``, ``output``, ``value``.
    leaks: list[str] = dataclasses.field(default_factory=list)
    #: Callbacks asyncio reported holding the event loop longer than :data:`SLOW_CALLBACK`:
    #: (seconds of wall time, seconds of CPU time, what).
    slow_callbacks: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)
    #: The end of what the call logged or printed.
    logs: str = ""

    @property
    def error_types(self) -> list[str]:
        """Qualified names of the error's class and its bases."""
        return list(self.error["mro"]) if self.error else []

    @property
    def message(self) -> str:
        return self.error["message"] if self.error else ""

    @property
    def message_length(self) -> int:
        return self.error["message_length"] if self.error else 0

    @property
    def is_vbrain_error(self) -> bool:
        """Whether the error is a ``VBrainError`` (matched by class name: the package is being
        reorganised, and the class may move to another module)."""
        return any(
            name.startswith("airflow_provider_vbrain.") and name.endswith(".VBrainError")
            for name in self.error_types
        )

    @property
    def longest_block(self) -> float:
        """The most CPU time one slow callback spent holding the event loop (0 when none was slow).

        CPU time, not wall time: on a loaded machine a 5 ms callback can take 400 ms of wall time
        while the process waits for a core, and that is not the call's doing.
        """
        return max((cpu for _, cpu, _ in self.slow_callbacks), default=0.0)

    def describe(self) -> str:
        """One line for assertion messages: what today's code did, with the measured numbers."""
        if self.outcome == "killed":
            what = f"was killed over the {self.killed.value if self.killed else '?'}"
        elif self.outcome == "raised":
            assert self.error is not None
            what = f"raised {self.error['type']}: {self.message[:300]!r}"
        else:
            what = f"returned {json.dumps(self.value, default=str)[:300]}"
        if self.error and self.outcome == "returned":
            what += f" (an error of {self.message_length:,} characters)"
        numbers = f"after {self.elapsed:.2f} s, peak +{self.peak_mb:.0f} MB"
        if self.slow_callbacks:
            wall, cpu, callback = max(self.slow_callbacks, key=lambda slow: slow[1])
            numbers += (
                f", one callback held the event loop {cpu:.2f} s of CPU ({wall:.2f} s): {callback[:150]}"
            )
        leaks = f"; the API key showed in {', '.join(self.leaks)}" if self.leaks else ""
        return f"{self.call} {what} {numbers}{leaks}"


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def start_fork_server() -> None:
    """Start the fork server now, so its imports overlap whatever runs before the first probe."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


def run(call: Call, *, time_limit: float, memory_limit_mb: float = MEMORY_LIMIT_MB) -> Report:
    """Run ``call`` in a child process and watch it.

    The child sees every ``AIRFLOW_CONN_*`` variable of this process as it is now.

    :param time_limit: seconds the call may take before the child is killed.
    :param memory_limit_mb: growth of the child's resident set that gets it killed.
    """
    return run_many([call], time_limit=time_limit, memory_limit_mb=memory_limit_mb)[0]


def run_many(
    calls: list[Call], *, time_limit: float, memory_limit_mb: float = MEMORY_LIMIT_MB
) -> list[Report]:
    """Run ``calls`` at the same time, each in its own watched child (for attacks that make a call wait:
    their bounds then overlap instead of adding up). Reports in the order of ``calls``."""
    context = _context()
    env = {name: value for name, value in os.environ.items() if name.startswith("AIRFLOW_CONN_")}
    with tempfile.TemporaryDirectory(prefix="vbrain-probe-") as folder:
        children = [
            _Watched(
                context, call, env, os.path.join(folder, f"output-{number}.txt"), time_limit, memory_limit_mb
            )
            for number, call in enumerate(calls)
        ]
        try:
            while not all(child.done for child in children):
                wait([child.receiver for child in children if not child.done], 0.01)
                for child in children:
                    child.step()
        finally:
            for child in children:
                child.close()
    reports = [child.report() for child in children]
    for report in reports:
        RECORDED.append({"test": CURRENT_TEST, "summary": report.describe(), **dataclasses.asdict(report)})
    return reports


class _Watched:
    """One child and what the parent saw of it."""

    def __init__(
        self,
        context: Any,
        call: Call,
        env: Mapping[str, str],
        output: str,
        time_limit: float,
        limit_mb: float,
    ) -> None:
        self.call = call
        self.output = output
        self.time_limit = time_limit
        self.limit_kb = limit_mb * 1024
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=_child, args=(sender, call, env, output), daemon=True)
        self.process.start()
        sender.close()
        self.started = time.monotonic()
        self.baseline_kb: int | None = None
        self.peak_kb = 0
        self.killed: Killed | None = None
        self.payload: dict[str, Any] | None = None
        self.wall = 0.0
        self.done = False
        self.logs = ""

    def step(self) -> None:
        """Read what the child sent, sample its memory, and kill it past a bound."""
        if self.done:
            return
        alive = self.process.is_alive()
        while self.receiver.poll():  # drained even once the child is gone: its report may be waiting
            try:
                kind, payload = self.receiver.recv()
            except EOFError:
                break
            if kind == "start":
                self.baseline_kb, self.started = payload, time.monotonic()
            else:
                self.payload = payload
                return self._finish()
        if not alive:
            return self._finish()
        rss, hwm = _memory_kb(self.process.pid)
        elapsed = time.monotonic() - self.started
        if self.baseline_kb is None:
            if elapsed > 60:  # never got going
                self._finish(Killed.CRASH)
            return
        self.peak_kb = max(self.peak_kb, rss, hwm)
        if self.peak_kb - self.baseline_kb > self.limit_kb:
            self._finish(Killed.MEMORY)
        elif elapsed > self.time_limit:
            self._finish(Killed.TIME)

    def _finish(self, killed: Killed | None = None) -> None:
        if killed is not None:
            self.killed = killed
            self.process.kill()
        self.wall = time.monotonic() - self.started
        self.done = True

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)
        self.receiver.close()
        self.logs = _tail(self.output)

    def report(self) -> Report:
        baseline_kb = self.baseline_kb or self.peak_kb
        if self.payload is not None:
            report = dict(self.payload)
            peak_kb = max(self.peak_kb, report.pop("hwm_kb"))
            report["peak_mb"] = max(0.0, (peak_kb - baseline_kb) / 1024)
            report["logs"] = (report["logs"] + "\n" + self.logs).strip()[-_CLIP:]
            return Report(**report)
        return Report(
            call=str(self.call),
            outcome="killed",
            killed=self.killed or Killed.CRASH,
            elapsed=self.wall,
            peak_mb=max(0.0, (self.peak_kb - baseline_kb) / 1024),
            logs=self.logs,
        )


def _memory_kb(pid: int) -> tuple[int, int]:
    """The resident set and its high-water mark of ``pid``, in KiB."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return rss, hwm


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.path.getsize(path) - _CLIP))
            return file.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------- in the child


#: CPU time of the event-loop callback that ran last (asyncio logs a slow one right after it ran).
_LAST_CALLBACK_CPU = [0.0]


def _measure_callbacks() -> None:
    """Time every event-loop callback in CPU seconds too, beside asyncio's own wall-clock timing."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        started = time.thread_time()
        try:
            run(handle)
        finally:
            _LAST_CALLBACK_CPU[0] = time.thread_time() - started

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


class _Capture(logging.Handler):
    """Every log record, formatted, and the event loop's slow-callback reports."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.slow: list[tuple[float, float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format is still worth keeping
            text = str(record.msg)
        if record.name == "asyncio" and (match := _SLOW_RE.search(text)):
            self.slow.append((float(match.group(2)), _LAST_CALLBACK_CPU[0], match.group(1)[:300]))
        if record.levelno >= logging.INFO:
            self.records.append(f"{record.levelname} {record.name}: {text}")


def _child(sender: Connection, call: Call, env: Mapping[str, str], output: str) -> None:
    for name in [name for name in os.environ if name.startswith("AIRFLOW_CONN_")]:
        del os.environ[name]
    os.environ.update(env)
    # Whatever the call prints goes to a file the parent reads (and checks for the key).
    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    # A backstop under the parent's watchdog: an allocation far past the bound fails here.
    size_kb = _virtual_kb()
    if size_kb:
        limit = (size_kb + 4 * 1024 * 1024) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    _measure_callbacks()
    capture = _Capture()
    root = logging.getLogger()
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    from tests.conftest import key_leaks

    try:  # the high-water mark starts at the fork server's; count from here
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    sender.send(("start", _memory_kb(os.getpid())[0]))
    started = time.monotonic()
    value: Any = None
    error: BaseException | None = None
    try:
        value = _perform(call)
    except BaseException as err:
        error = err
    elapsed = time.monotonic() - started
    hwm = _memory_kb(os.getpid())[1]
    sys.stdout.flush()
    sys.stderr.flush()
    logs = "\n".join(capture.records)
    leaks = []
    if isinstance(value, BaseException):
        error, value = value, None
        outcome = "returned"
    else:
        outcome = "raised" if error is not None else "returned"
    described = _describe(error) if error is not None else None
    if error is not None:
        leaks += [place for place, text in _error_texts(error) if key_leaks(text)]
    plain = _plain(value)
    if key_leaks(value if isinstance(value, str) else json.dumps(plain, default=str, ensure_ascii=False)):
        leaks.append("value")
    if key_leaks(logs):
        leaks.append("logs")
    with open(output, errors="replace") as printed:
        if key_leaks(printed.read()):
            leaks.append("output")
    sender.send(
        (
            "report",
            {
                "call": str(call),
                "outcome": outcome,
                "elapsed": elapsed,
                "hwm_kb": hwm,
                "value": plain,
                "value_length": len(value) if isinstance(value, str) else 0,
                "error": described,
                "leaks": sorted(set(leaks)),
                "slow_callbacks": capture.slow,
                "logs": logs[-_CLIP:],
            },
        )
    )
    sender.close()


def _virtual_kb() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _perform(call: Call) -> Any:
    call = dataclasses.replace(
        call,
        args=tuple(_built(arg) for arg in call.args),
        kwargs={name: _built(arg) for name, arg in call.kwargs.items()},
    )
    if call.kind == "sync":
        from airflow_provider_vbrain.hooks.vbrain import VBrainHook

        return getattr(VBrainHook(**call.hook), call.method)(*call.args, **call.kwargs)
    if call.kind == "function":
        import importlib

        module, _, name = call.method.partition(":")
        result = getattr(importlib.import_module(module), name)(*call.args, **call.kwargs)
        return asyncio.run(_on_debug_loop(result), debug=True) if asyncio.iscoroutine(result) else result
    if call.kind == "async":
        from airflow_provider_vbrain.hooks.vbrain import VBrainAsyncHook

        hook = VBrainAsyncHook(**call.hook)
        return asyncio.run(_on_debug_loop(getattr(hook, call.method)(*call.args, **call.kwargs)), debug=True)
    if call.kind == "trigger":
        return asyncio.run(_on_debug_loop(_first_event(call.kwargs)), debug=True)
    raise ValueError(f"unknown call kind {call.kind!r}")


async def _on_debug_loop(work: Any) -> Any:
    asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK
    return await work


async def _first_event(kwargs: Mapping[str, Any]) -> Any:
    from airflow_provider_vbrain.triggers.vbrain import VBrainJobTrigger

    async for event in VBrainJobTrigger(**kwargs).run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and every exception behind it (``__cause__`` and ``__context__``), each once."""
    seen: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop()
        if any(current is known for known in seen):
            continue
        seen.append(current)
        todo += [link for link in (current.__cause__, current.__context__) if link is not None]
    return seen


def _error_texts(error: BaseException) -> list[tuple[str, str]]:
    texts = [
        ("message", _safe(str, error)),
        ("message", _safe(repr, error)),
        ("args", _safe(repr, error.args)),
    ]
    for link in _chain(error)[1:]:
        texts += [("chain", _safe(str, link)), ("chain", _safe(repr, link))]
        texts.append(("chain", _safe(repr, getattr(link, "args", ()))))
    texts.append(("traceback", "".join(traceback.format_exception(error))))
    return texts


def _safe(render: Callable[[Any], str], value: Any) -> str:
    try:
        return render(value)
    except Exception as err:  # a broken __repr__ is itself worth seeing
        return f"<cannot render: {type(err).__name__}: {err}>"


def _describe(error: BaseException) -> dict[str, Any]:
    message = _safe(str, error)
    return {
        "type": _name(type(error)),
        "mro": [_name(cls) for cls in type(error).__mro__],
        "message": message[:_CLIP],
        "message_length": len(message),
        "chain": [f"{_name(type(link))}: {_safe(str, link)[:300]}" for link in _chain(error)[1:]],
    }


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> Any:
    """A JSON-able form of a returned value (a status becomes its fields)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value[:_CLIP] if isinstance(value, str) else value
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in list(value.items())[:100]}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value[:100]]
    return repr(value)[:_CLIP]


# ---------------------------------------------------------------------- shorthands for tests


def sync(
    method: str,
    *args: Any,
    time_limit: float,
    hook: Mapping[str, Any] | None = None,
    memory_limit_mb: float = MEMORY_LIMIT_MB,
    **kwargs: Any,
) -> Report:
    """``VBrainHook(**hook).method(*args, **kwargs)`` in a watched child."""
    call = Call("sync", method, args, kwargs, hook or {})
    return run(call, time_limit=time_limit, memory_limit_mb=memory_limit_mb)


def asynchronous(
    method: str,
    *args: Any,
    time_limit: float,
    hook: Mapping[str, Any] | None = None,
    memory_limit_mb: float = MEMORY_LIMIT_MB,
    **kwargs: Any,
) -> Report:
    """``await VBrainAsyncHook(**hook).method(*args, **kwargs)`` on a debug event loop in a watched child."""
    call = Call("async", method, args, kwargs, hook or {})
    return run(call, time_limit=time_limit, memory_limit_mb=memory_limit_mb)


def trigger(*, time_limit: float, **kwargs: Any) -> Report:
    """``VBrainJobTrigger(**kwargs).run()`` on a debug event loop in a watched child, to its first event."""
    return run(Call("trigger", kwargs=kwargs), time_limit=time_limit)
