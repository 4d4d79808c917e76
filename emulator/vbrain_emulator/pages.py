"""Read-only HTML pages about the emulator's jobs and repositories, for a browser.

VBrain's web UI address is not part of the API reference, so the emulator serves its own small pages:
an operator's "VBrain job" link (a URL template such as ``http://127.0.0.1:8765/ui/jobs/{job_id}``)
then leads somewhere in local demos. They need no API key and change nothing.

Pure rendering here (text in, text out); the handlers in :mod:`.ui` look the objects up. Every value
that reaches a page is HTML-escaped, since params, metadata, errors and logs are whatever clients sent
or applications wrote.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from vbrain_emulator.jobs import Job
from vbrain_emulator.repositories import Repository
from vbrain_emulator.wire import FAILED, FINISHED, QUEUED

__all__ = ["error_page", "index_page", "job_page", "not_found_page", "repository_page"]

#: Seconds between reloads of a page about a job that is not over yet.
REFRESH_SECONDS = 2
_TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d2330; max-width: 70rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.6rem; }
table { border-collapse: collapse; } th, td { text-align: left; padding: .3rem .8rem .3rem 0; }
table.list th, table.list td { border-bottom: 1px solid #dde1ea; }
pre { background: #f4f6fa; padding: .8rem; overflow-x: auto; }
.status { font-weight: 600; padding: .1rem .5rem; border-radius: .3rem; background: #e7ebf3; }
.status-finished { background: #d8f3dc; } .status-failed { background: #fbd9d9; }
.status-started { background: #fff1c2; }
nav { margin-bottom: 1rem; } .muted { color: #5c6578; }
"""


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _json(value: Any) -> str:
    return f"<pre>{_text(json.dumps(value, indent=2, ensure_ascii=False, default=str))}</pre>"


def _time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime(_TIME_FORMAT)


def _link(prefix: str, kind: str, identifier: str) -> str:
    href = f"{prefix}/{kind}/{quote(identifier, safe='')}"
    return f'<a href="{_text(href)}"><code>{_text(identifier)}</code></a>'


def _status(status: str) -> str:
    return f'<span class="status status-{_text(status)}">{_text(status)}</span>'


def _rows(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; the values are HTML already."""
    return (
        "<table>"
        + "".join(f"<tr><th>{_text(name)}</th><td>{value}</td></tr>" for name, value in rows)
        + "</table>"
    )


def _names(names: Iterable[str]) -> str:
    items = "".join(f"<li><code>{_text(name)}</code></li>" for name in sorted(names))
    return f"<ul>{items}</ul>" if items else '<p class="muted">None.</p>'


def _layout(title: str, body: str, prefix: str, *, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">{meta}<title>{_text(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f'<nav><a href="{_text(prefix)}/">VBrain emulator: recent jobs</a></nav>'
        f"{body}</body></html>\n"
    )


def _jobs_table(jobs: list[Job], now: float, prefix: str) -> str:
    if not jobs:
        return '<p class="muted">No jobs.</p>'
    header = (
        "<tr><th>Job</th><th>Status</th><th>Application</th><th>Repository</th>"
        "<th>Organization</th><th>Client</th><th>Created</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{_link(prefix, 'jobs', job.job_id)}</td><td>{_status(job.status(now))}</td>"
        f"<td>{_text(job.application_id)}</td><td>{_link(prefix, 'repositories', job.repository_id)}</td>"
        f"<td>{_text(job.tenant[0])}</td><td>{_text(job.tenant[1])}</td>"
        f"<td>{_text(_time(job.created_at))}</td></tr>"
        for job in jobs
    )
    return f'<table class="list">{header}{rows}</table>'


def job_page(job: Job, now: float, prefix: str) -> str:
    """The page about one job: state, application, repository, params, metadata, result or error,
    and its log files.

    :param job: the job.
    :param now: the clock reading its state is computed at.
    :param prefix: the path the pages are served under (e.g. ``/ui``), for links.
    """
    status = job.status(now)
    over = status in (FINISHED, FAILED)
    facts = [
        ("Status", _status(status)),
        ("Application", _text(job.application_id)),
        ("Repository", _link(prefix, "repositories", job.repository_id)),
        ("Organization", _text(job.tenant[0])),
        ("Client", _text(job.tenant[1])),
        ("Created", _text(_time(job.created_at))),
    ]
    if status != QUEUED:
        facts.append(("Started", _text(_time(job.start_at))))
    if over:
        facts.append(("Ended", _text(_time(job.end_at))))
    parts = [f"<h1>VBrain job <code>{_text(job.job_id)}</code></h1>", _rows(facts)]
    if not over:
        parts.append(
            f'<p class="muted">The job is not over yet; this page reloads every {REFRESH_SECONDS} s.</p>'
        )
    parts += ["<h2>Parameters</h2>", _json(job.params), "<h2>Metadata</h2>", _json(job.metadata)]
    if status == FINISHED and job.result is not None:
        parts += ["<h2>Result</h2>", _json(job.result.output), "<h2>Output files</h2>"]
        parts.append(_names(job.output_files()))
    elif status == FAILED:
        parts += ["<h2>Error</h2>", f"<pre>{_text(job.error)}</pre>"]
    logs = job.log_files(now)
    parts += ["<h2>Log files</h2>", _names(logs)]
    parts += [
        f"<details><summary><code>{_text(name)}</code></summary>"
        f"<pre>{_text(data.decode('utf-8', 'replace'))}</pre></details>"
        for name, data in sorted(logs.items())
    ]
    return _layout(f"VBrain job {job.job_id} ({status})", "".join(parts), prefix, refresh=not over)


def repository_page(repository: Repository, now: float, prefix: str) -> str:
    """The page about one repository: its details, params, metadata, input files and jobs.

    :param repository: the repository.
    :param now: the clock reading its jobs' states are computed at.
    :param prefix: the path the pages are served under, for links.
    """
    facts = [
        ("Name", _text(repository.name)),
        ("Created", _text(repository.created.strftime(_TIME_FORMAT))),
        ("Created by", _text(repository.created_by)),
        ("Application", _text(repository.application_id or "")),
    ]
    parts = [
        f"<h1>VBrain repository <code>{_text(repository.repository_id)}</code></h1>",
        _rows(facts),
        "<h2>Parameters</h2>",
        _json(repository.params),
        "<h2>Metadata</h2>",
        _json(repository.metadata),
        "<h2>Input files</h2>",
        _names(repository.input_files),
        "<h2>Jobs</h2>",
        _jobs_table(list(reversed(repository.jobs.values())), now, prefix),
    ]
    return _layout(f"VBrain repository {repository.repository_id}", "".join(parts), prefix)


def index_page(jobs: list[Job], now: float, prefix: str) -> str:
    """The list of recent jobs of every organization and client, newest first.

    :param jobs: the jobs to list, in order.
    :param now: the clock reading their states are computed at.
    :param prefix: the path the pages are served under, for links.
    """
    running = any(job.status(now) not in (FINISHED, FAILED) for job in jobs)
    body = f"<h1>Recent VBrain jobs</h1>{_jobs_table(jobs, now, prefix)}"
    return _layout("VBrain emulator: recent jobs", body, prefix, refresh=running)


def not_found_page(kind: str, identifier: str, prefix: str) -> str:
    """The page for an id the emulator does not know.

    :param kind: ``job`` or ``repository``.
    :param identifier: the id from the address.
    :param prefix: the path the pages are served under, for links.
    """
    body = (
        f"<h1>No such {_text(kind)}</h1><p>The emulator has no {_text(kind)} "
        f"<code>{_text(identifier)}</code>: it may have been deleted, or the emulator restarted "
        "(it keeps everything in memory).</p>"
    )
    return _layout(f"No such {kind}", body, prefix)


def error_page(status: int, reason: str, prefix: str) -> str:
    """The page for any other HTTP error under the pages' path (unknown page, wrong method).

    :param status: the HTTP status.
    :param reason: its phrase.
    :param prefix: the path the pages are served under, for links.
    """
    return _layout(f"{status} {reason}", f"<h1>{status} {_text(reason)}</h1>", prefix)
