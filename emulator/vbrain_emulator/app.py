"""The aiohttp application: VBrain's REST API under ``/api/v1``, the test control API under ``/_emulator``
and read-only job pages under ``/ui``; this module builds it and holds the route table.

Where each part lives: :mod:`.api` (the API's handlers), :mod:`.submissions` (the creates' bodies),
:mod:`.gateway` (the middleware in front: faults, the ``x-api-key`` check, error bodies, the request
log), :mod:`.control` (the control API), :mod:`.ui` (the job pages), :mod:`.state` (what they act on).
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from vbrain_emulator import api, control
from vbrain_emulator._web import CONTROL_PREFIX, SETTINGS_KEY, STATE_KEY, UI_PREFIX, Settings
from vbrain_emulator.gateway import gateway
from vbrain_emulator.state import EmulatorState
from vbrain_emulator.ui import ui_index, ui_job, ui_repository
from vbrain_emulator.wire import API_PREFIX

__all__ = ["API_PREFIX", "CONTROL_PREFIX", "STATE_KEY", "UI_PREFIX", "create_app"]

# Uploads are whole input folders; aiohttp's 1 MiB default would refuse realistic ZIPs.
MAX_UPLOAD_BYTES = 512 * 1024**2


def create_app(
    state: EmulatorState | None = None,
    *,
    api_keys: Iterable[str] = (),
    control: bool = False,
    ui: bool = True,
) -> web.Application:
    """Build the emulator's aiohttp application, e.g. to embed it or run it with ``web.run_app``.

    :param state: the store to serve; a fresh one with default durations when None.
    :param api_keys: the accepted ``x-api-key`` values; when empty any non-empty key is accepted.
    :param control: serve the test control API under ``/_emulator`` (off: those paths answer 404).
    :param ui: serve the read-only job pages under ``/ui`` (off: those paths answer 404).
    """
    app = web.Application(middlewares=[gateway], client_max_size=MAX_UPLOAD_BYTES)
    app[STATE_KEY] = state if state is not None else EmulatorState()
    app[SETTINGS_KEY] = Settings(api_keys=frozenset(api_keys), control=control, ui=ui)
    _add_api_routes(app)
    if control:
        _add_control_routes(app)
    if ui:
        _add_ui_routes(app)
    return app


def _add_api_routes(app: web.Application) -> None:
    prefix = API_PREFIX
    app.router.add_routes(
        [
            web.get(f"{prefix}/repository", api.list_repositories),
            web.post(f"{prefix}/repository", api.create_repository),
            web.get(f"{prefix}/repository/{{repository_id}}", api.get_repository),
            web.delete(f"{prefix}/repository/{{repository_id}}", api.delete_repository),
            web.get(f"{prefix}/repository/{{repository_id}}/input", api.repository_input),
            web.get(f"{prefix}/repository/{{repository_id}}/params", api.repository_params),
            web.get(f"{prefix}/job", api.list_jobs),
            web.post(f"{prefix}/job/execute", api.execute_job),
            web.get(f"{prefix}/job/{{job_id}}", api.get_job),
            web.delete(f"{prefix}/job/{{job_id}}", api.delete_job),
            web.get(f"{prefix}/job/{{job_id}}/result", api.job_result),
            web.get(f"{prefix}/job/{{job_id}}/params", api.job_params),
            web.get(f"{prefix}/job/{{job_id}}/output", api.job_output),
            web.get(f"{prefix}/job/{{job_id}}/logs", api.job_logs),
        ]
    )


def _add_control_routes(app: web.Application) -> None:
    prefix = CONTROL_PREFIX
    app.router.add_routes(
        [
            web.get(f"{prefix}/faults", control.list_faults),
            web.post(f"{prefix}/faults", control.add_fault),
            web.delete(f"{prefix}/faults", control.clear_faults),
            web.get(f"{prefix}/requests", control.list_requests),
            web.delete(f"{prefix}/requests", control.clear_requests),
            web.get(f"{prefix}/jobs", control.list_all_jobs),
            web.get(f"{prefix}/repositories", control.list_all_repositories),
            web.post(f"{prefix}/repositories/{{repository_id}}/jobs", control.add_jobs),
            web.post(f"{prefix}/jobs/{{job_id}}/finish", control.finish_job),
            web.post(f"{prefix}/jobs/{{job_id}}/fail", control.fail_job),
            web.get(f"{prefix}/config", control.get_config),
            web.post(f"{prefix}/config", control.set_config),
            web.get(f"{prefix}/profile", control.get_profile),
            web.put(f"{prefix}/profile", control.set_profile),
            web.post(f"{prefix}/reset", control.reset),
        ]
    )


def _add_ui_routes(app: web.Application) -> None:
    app.router.add_routes(
        [
            web.get(UI_PREFIX, ui_index),
            web.get(f"{UI_PREFIX}/", ui_index),
            web.get(f"{UI_PREFIX}/jobs/{{job_id}}", ui_job),
            web.get(f"{UI_PREFIX}/repositories/{{repository_id}}", ui_repository),
        ]
    )
