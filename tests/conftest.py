"""Test set-up shared by the whole suite.

Airflow reads ``AIRFLOW_HOME`` when first imported and creates it if missing,
so a throwaway home is made here, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="vbrain-airflow-home-")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The DAG files end-to-end tests run: the examples and the test DAGs, linked into one folder.
DAGS_FOLDER = os.path.join(_HOME, "dags")
os.makedirs(DAGS_FOLDER)
for _folder in ("example_dags", os.path.join("tests", "e2e", "dags")):
    _source = os.path.join(_REPO, _folder)
    for _name in sorted(os.listdir(_source)) if os.path.isdir(_source) else ():
        if _name.endswith(".py") and not _name.startswith("_"):
            os.symlink(os.path.join(_source, _name), os.path.join(DAGS_FOLDER, _name))
os.environ["AIRFLOW_HOME"] = _HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = DAGS_FOLDER
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ.pop("AIRFLOW_CONN_VBRAIN_DEFAULT", None)

import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

# pytester runs the emulator's pytest plugin the way a user's project would.
pytest_plugins = ["pytester"]

#: The API key of every test connection: long and full of characters that tempt
#: escaping bugs, so a leak is easy to grep for.
API_KEY = "k3y-<&\"'%s{}\\/ spaces-and-ünïcode-9f8e7d"


def _spellings(secret: str) -> set[str]:
    """``secret`` raw, JSON-escaped (ASCII or not), ``repr``, URL-encoded."""
    from urllib.parse import quote, quote_plus

    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret),
        quote(secret, safe=""),
        quote_plus(secret),
    }


def key_leaks(text: str) -> bool:
    """Whether ``text`` holds the API key in any spelling a leak could take: raw, JSON-escaped
    (ASCII or not), ``repr``, URL-encoded, or a distinctive piece of it."""
    spellings = _spellings(API_KEY) | {"n%C3%AFcode-9f8e7d", "nïcode-9f8e7d", "n\\u00efcode-9f8e7d"}
    return any(spelling in text for spelling in spellings)


#: The credentials the password-protected test proxy requires: the password full of what a URL
#: must percent-encode, so a leak in either spelling is easy to grep for.
PROXY_USER = "vbrain-proxy"
PROXY_PASSWORD = "pr0xy-s3cret/@:%-7e6d"


def proxy_password_leaks(text: str) -> bool:
    """Whether ``text`` holds the proxy's password: in any spelling :func:`key_leaks` knows, as the
    ``Proxy-Authorization`` header carries it (base64), or a distinctive piece of it."""
    import base64

    basic = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    return any(spelling in text for spelling in _spellings(PROXY_PASSWORD) | {basic, "s3cret/", "s3cret%2F"})


#: The test connection's organization.
ORG = "acme"


def connection_json(url: str, **overrides: Any) -> str:
    """The ``AIRFLOW_CONN_*`` value for a VBrain connection to ``url``."""
    conn: dict[str, Any] = {
        "conn_type": "vbrain",
        "host": url,
        "login": "ana",
        "password": API_KEY,
        "extra": {"organization_id": ORG, "client_id": "ops", "application_id": "Tutorial"},
    }
    extra = overrides.pop("extra", None)
    conn.update(overrides)
    if extra:
        conn["extra"].update(extra)
    return json.dumps(conn)


@pytest.fixture(autouse=True)
def _hooks_left_unpatched() -> Any:
    """Fail a test that leaves a hook class patched for the tests after it (a mock ``start()``ed and
    never stopped, an assignment to the class), and undo what it left. ``mocker`` undoes its own
    patches before this checks (an autouse fixture is set up first, so torn down last)."""
    module = sys.modules.get("airflow_provider_vbrain.hooks.vbrain")  # the emulator's tests never load it
    classes = (module.VBrainHook, module.VBrainAsyncHook) if module is not None else ()
    before = {cls: dict(vars(cls)) for cls in classes}
    yield
    left = []
    for cls, attributes in before.items():
        now = dict(vars(cls))
        for name in sorted(attributes.keys() | now.keys()):
            if now.get(name) is not attributes.get(name):
                left.append(f"{cls.__name__}.{name}")
                if name in attributes:
                    setattr(cls, name, attributes[name])
                else:
                    delattr(cls, name)
    assert not left, f"still patched after the test: {left}"


@pytest.fixture
def vbrain_conn(vbrain_emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A ``vbrain_default`` connection to a clean emulator, with fast retries."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_VBRAIN_DEFAULT",
        connection_json(vbrain_emulator.url, extra={"retry_base_delay": 0.01, "retry_max_delay": 0.05}),
    )
    return vbrain_emulator


@pytest.fixture
def job_page(vbrain_conn: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator's job pages as the connection's ``job_url_template`` (a ``str.format`` template)."""
    template = vbrain_conn.url + "/ui/jobs/{job_id}?repository={repository_id}&org={organization_id}"
    extra = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "job_url_template": template}
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(vbrain_conn.url, extra=extra))
    return template


# ---------------------------------------------------------------- proxies

#: Every variable that names a proxy for requests or aiohttp, in both spellings.
PROXY_VARIABLES = [f"{name}_proxy" for name in ("http", "https", "all", "no")]
PROXY_VARIABLES += [name.upper() for name in PROXY_VARIABLES]


@pytest.fixture
def proxy_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """No proxy variable set, then those the test sets with the returned function (upper-case names,
    e.g. ``proxy_env(HTTP_PROXY=url, NO_PROXY="127.0.0.1")``); all restored after the test."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def set_proxies(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_proxies


@pytest.fixture(scope="session")
def _open_proxy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.forward_proxy import ForwardProxy

    proxy = ForwardProxy(tmp_path_factory.mktemp("proxy")).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def _password_proxy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.forward_proxy import ForwardProxy

    proxy = ForwardProxy(tmp_path_factory.mktemp("password-proxy"), PROXY_USER, PROXY_PASSWORD).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def forward_proxy(_open_proxy: Any, proxy_env: Any) -> Any:
    """A real forward proxy (:class:`tests.forward_proxy.ForwardProxy`) that asks for no credentials,
    its log read from this test on; no proxy variable set."""
    _open_proxy.mark()
    return _open_proxy


@pytest.fixture
def password_proxy(_password_proxy: Any, proxy_env: Any) -> Any:
    """A real forward proxy requiring :data:`PROXY_USER` and :data:`PROXY_PASSWORD`, its log read from
    this test on; no proxy variable set."""
    _password_proxy.mark()
    return _password_proxy


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata database, made once per session for the tests that run DAGs."""
    from airflow.utils.db import resetdb

    resetdb()
    _log_at_info_as_workers_do()
    _one_execution_api_for_all_tasks()


def _one_execution_api_for_all_tasks() -> None:
    """``dag.test()`` on Airflow 3.0 to 3.2 builds a new in-process execution API app for each
    task it runs, which costs about a second a task; 3.3 builds one and keeps it, as a real API
    server is one app serving every task. Do as 3.3 does on the earlier lines too."""
    import functools

    try:
        from airflow.sdk.execution_time import supervisor
    except ImportError:  # Airflow 2 runs tasks without an execution API
        return
    build = getattr(supervisor, "in_process_api_server", None)
    if build is not None and not hasattr(build, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(build)  # type: ignore[attr-defined]


def _log_at_info_as_workers_do() -> None:
    """Airflow 3.0's dag.test() leaves structlog unconfigured, so everything down to debug is
    printed, including the in-process task runner's debug log of each message it passes on,
    the values it is asked to mask among them. A worker logs at Airflow's level (INFO)."""
    import logging

    try:
        import structlog
    except ImportError:  # Airflow 2
        return
    if not structlog.is_configured():
        # Nor does a worker render a traceback's local variables (structlog's default): they would
        # print request headers, which Airflow's task logs never show.
        processors = list(structlog.get_config()["processors"])
        processors[-1] = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        structlog.configure(
            processors=processors, wrapper_class=structlog.make_filtering_bound_logger(logging.INFO)
        )


@pytest.fixture(scope="session")
def dag_bag(airflow_db: None) -> Any:
    """Every DAG in :data:`DAGS_FOLDER`, parsed once; import errors fail the test that asks."""
    from airflow.models import DagBag

    bag = DagBag(dag_folder=DAGS_FOLDER)
    assert not bag.import_errors, bag.import_errors
    return bag


# ---------------------------------------------------------------- running DAGs

#: Everything DAG runs printed, and the emulator's request logs, for the secrets audit.
PRINTED: list[str] = []
#: Each DAG's declared param defaults: ``dag.test(run_conf=...)`` keeps a run's conf in the
#: DAG object's params, so every run states all of them.
DEFAULTS: dict[str, dict[str, Any]] = {}


@pytest.fixture
def run_dag(dag_bag: Any, vbrain_conn: Any, capfd: pytest.CaptureFixture[str]) -> Any:
    """Run a DAG by id; return (dag run, task states, everything printed)."""

    def run(dag_id: str, **conf: Any) -> tuple[Any, dict[str, str], str]:
        dag = dag_bag.get_dag(dag_id)
        assert dag is not None, f"no DAG {dag_id}"
        _stream_logs_to_the_capture()
        defaults = DEFAULTS.setdefault(dag_id, copy.deepcopy(dict(dag.params.dump())))
        dag_run = dag.test(run_conf={**copy.deepcopy(defaults), **conf})
        out, err = capfd.readouterr()
        printed = out + err
        PRINTED.append(printed)
        PRINTED.append(json.dumps(vbrain_conn.requests()))  # the emulator's request log
        task_states = {ti.task_id: _name(ti.state) for ti in dag_run.get_task_instances()}
        return dag_run, task_states, printed

    return run


@pytest.fixture
def recorded() -> Any:
    """A :class:`tests.core.Recorder` as the process's meter for the test."""
    from tests.core import recording

    with recording() as recorder:
        yield recorder


@pytest.fixture
def inline_triggers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The triggers ``dag.test()`` runs in line (it stands in for the triggerer), as they ran."""
    import importlib

    ran: list[Any] = []
    for name in ("airflow.sdk.definitions.dag", "airflow.models.dag"):  # Airflow 3, Airflow 2
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        original = getattr(module, "_run_inline_trigger", None)
        if original is not None:
            break
    else:
        pytest.fail("this Airflow's dag.test() has no _run_inline_trigger to watch")

    def run_inline_trigger(trigger: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(trigger)
        return original(trigger, *args, **kwargs)

    monkeypatch.setattr(module, "_run_inline_trigger", run_inline_trigger)
    return ran


def _stream_logs_to_the_capture() -> None:
    """Point logging's stream handlers at this test's stderr.

    Airflow 2 configures its console handlers once, bound to whatever ``sys.stderr``
    was then (an earlier test's capture, closed since), so its task logs would be lost.
    """
    import logging

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler:
                handler.stream = sys.stderr  # not setStream(): it would flush the closed stream


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """The XCom a task of ``dag_run`` pushed under ``key``; None when it pushed none (as Airflow 2's
    ``XCom.get_one`` says it)."""
    ids = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id, "task_id": task_id, "key": key}
    try:
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom

        return XCom.get_one(**ids)
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(**ids).one_or_none()
        return None if row is None else XComModel.deserialize_value(row)


def _name(value: Any) -> str:
    return str(getattr(value, "value", value))


def state(dag_run: Any) -> str:
    return _name(dag_run.state)
