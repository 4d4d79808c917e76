"""The handlers of the read-only job pages under ``/ui``: look the objects up, render them with
:mod:`.pages`.

The pages need no API key, skip injected faults and are not logged as API traffic (the gateway sends
``/ui`` requests straight here). HTTP errors on these paths answer as HTML pages too.
"""

from __future__ import annotations

from aiohttp import web

from vbrain_emulator import pages
from vbrain_emulator._web import UI_PREFIX, Handler, state_of

__all__ = ["UI_INDEX_JOBS", "serve_page", "ui_index", "ui_job", "ui_repository"]

#: How many jobs the /ui/ index shows, newest first.
UI_INDEX_JOBS = 200


def _page(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


async def ui_index(request: web.Request) -> web.Response:
    state = state_of(request)
    return _page(200, pages.index_page(state.recent_jobs(UI_INDEX_JOBS), state.clock(), UI_PREFIX))


async def ui_job(request: web.Request) -> web.Response:
    state = state_of(request)
    job_id = request.match_info["job_id"]
    job = state.find_job(job_id)
    if job is None:
        return _page(404, pages.not_found_page("job", job_id, UI_PREFIX))
    return _page(200, pages.job_page(job, state.clock(), UI_PREFIX))


async def ui_repository(request: web.Request) -> web.Response:
    state = state_of(request)
    repository_id = request.match_info["repository_id"]
    repository = state.find_repository(repository_id)
    if repository is None:
        return _page(404, pages.not_found_page("repository", repository_id, UI_PREFIX))
    return _page(200, pages.repository_page(repository, state.clock(), UI_PREFIX))


async def serve_page(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a page handler, answering HTTP errors (unknown page, wrong method) as HTML pages too.

    :param request: a request under ``/ui``.
    :param handler: the handler aiohttp routed it to.
    """
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _page(exc.status, pages.error_page(exc.status, exc.reason, UI_PREFIX))
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
