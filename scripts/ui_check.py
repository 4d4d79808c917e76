"""``make ui-test``: what a user meets in Airflow's UI, checked in a real browser.

Starts what ``make demo-ui`` starts (``airflow standalone`` and the emulator, with
``vbrain_default`` stored in the metadata database) in a throwaway ``AIRFLOW_HOME``
on free ports, then drives Debian's Chromium with Playwright through Airflow 3's
React UI:

1. Admin > Connections lists ``vbrain_default``; its Test button reports success,
   naming the connection.
2. Its edit form shows our labels (Base URL, Username, API key, Port) and the
   typed extra fields (numbers for the timeout and retries, Verify TLS).
3. A connection added through the form with a wrong API key is saved with typed
   extras, and its Test button fails saying to check the API key.
4. The tutorial DAG, triggered from its page, succeeds.
5. When the provider defines the "VBrain job" extra link, the execute and sensor
   tasks show it, pointing at the connection's ``job_url_template`` filled with the
   job id; when the emulator serves job pages, the link opens the job's page.

Then everything is stopped and checked gone. Chromium is installed from Debian's
packages when missing (as root); Playwright's own browser download is not used.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo import DEMO_API_KEY, UiDemo, ui_demo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Generous: two cores shared with other work, and a React app that loads its bundle first.
TIMEOUT_MS = 60_000
RUN_TIMEOUT = 300
TUTORIAL = "example_vbrain_tutorial"


def log(message: str) -> None:
    print(f"[ui-test {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0:
        raise SystemExit(f"{CHROMIUM} is missing: install Debian's chromium package (as root)")
    log("installing chromium from Debian packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


class Api:
    """Airflow's REST API, to read back what the UI did (ids, states, stored values)."""

    def __init__(self, base: str) -> None:
        self.base = base
        with urllib.request.urlopen(f"{base}/auth/token", timeout=30) as answer:  # no login in the demo
            self.token = json.load(answer)["access_token"]

    def get(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.base}/api/v2{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def run_checks(demo: UiDemo, emulator_port: int) -> None:
    from playwright.sync_api import Page, expect, sync_playwright

    api = Api(demo.airflow_url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            page: Page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)

            def test_button(conn_id: str, expected: str) -> None:
                page.goto(f"{demo.airflow_url}/connections")
                row = page.get_by_role("row", name=re.compile(rf"\b{conn_id}\b"))
                row.get_by_role("button", name="Test Connection").click()
                toast = page.get_by_role("status").filter(has_text="This VBrain connection")
                expect(toast).to_contain_text(expected)
                log(f"Test button of {conn_id}: {toast.inner_text().splitlines()[-1][:160]}")

            # 1. The stored demo connection, and its Test button.
            test_button("vbrain_default", "This VBrain connection works")

            # 2. The edit form: our labels and the typed extra fields.
            page.get_by_role("row", name=re.compile(r"\bvbrain_default\b")).get_by_role(
                "button", name="Edit Connection"
            ).click()
            dialog = page.get_by_role("dialog")
            for label, value in (
                ("Base URL", "http://127.0.0.1"),
                ("Username", "demo"),
                ("Port", str(emulator_port)),
            ):
                expect(form_field(dialog, label).locator("input")).to_have_value(value)
            expect(form_field(dialog, "API key").locator("input")).to_have_attribute("type", "password")
            dialog.get_by_role("button", name="Extra Fields", exact=True).click()
            for label, value in (
                ("Organization ID", "demo-org"),
                ("Client ID", "demo-client"),
                ("Application ID", "Tutorial"),
                ("Verify TLS", "true"),  # true, false or a CA bundle's path
            ):
                expect(form_field(dialog, label).get_by_role("textbox")).to_have_value(value)
            for label, value in (
                ("Timeout (seconds)", "60"),
                ("Download timeout (seconds)", "21600"),
                ("Retry attempts", "5"),
                ("Retry base delay (seconds)", "1"),
                ("Retry max delay (seconds)", "30"),
            ):
                expect(dialog.get_by_role("spinbutton", name=label, exact=True)).to_have_value(value)
            log("edit form: relabelled fields and typed extra fields present")
            page.keyboard.press("Escape")

            # 3. A connection added through the form, with a wrong key.
            add_connection(page, demo, emulator_port)
            stored = api.get("/connections/vbrain_wrong_key")
            extra = json.loads(stored["extra"])
            check(stored["port"] == emulator_port, f"port not stored: {stored}")
            check(
                (extra["timeout"], extra["verify"], extra["retry_attempts"]) == (60, True, 5),
                f"the form did not write typed extras: {extra}",
            )
            log(f"added vbrain_wrong_key through the form; stored extra: {extra}")
            test_button("vbrain_wrong_key", "This VBrain connection failed. Check the API key")

            # 4. The tutorial, triggered from its page.
            run_id = trigger(page, api, demo)
            run = wait_for_run(api, run_id)
            check(run["state"] == "success", f"{TUTORIAL} run {run_id} ended {run['state']}")
            page.goto(f"{demo.airflow_url}/dags/{TUTORIAL}/runs/{run_id}")
            expect(page.get_by_text("success").first).to_be_visible()
            log(f"{TUTORIAL} run {run_id}: success")

            # 5. The "VBrain job" link on the tasks that start and watch the job.
            check_job_links(page, api, demo, run_id, emulator_port)
        finally:
            browser.close()


def add_connection(page: Any, demo: UiDemo, emulator_port: int) -> None:
    from playwright.sync_api import expect

    page.goto(f"{demo.airflow_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Connection ID").fill("vbrain_wrong_key")
    dialog.get_by_role("combobox", name="Connection Type").fill("VBrain")
    page.keyboard.press("Enter")

    def fill(label: str, value: str) -> None:
        form_field(dialog, label).locator("input").first.fill(value)

    fill("Base URL", "http://127.0.0.1")
    fill("Port", str(emulator_port))
    fill("Username", "demo")
    fill("API key", "not-" + DEMO_API_KEY)
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    fill("Organization ID", "demo-org")
    fill("Client ID", "demo-client")
    fill("Application ID", "Tutorial")
    dialog.get_by_role("button", name="Save").click()
    expect(page.get_by_role("row", name=re.compile(r"\bvbrain_wrong_key\b"))).to_be_visible()


def form_field(dialog: Any, label: str) -> Any:
    """The connection form's field (a group) labelled ``label``; a required one's label ends in *."""
    return dialog.get_by_role("group").filter(
        has=dialog.page.get_by_text(re.compile(rf"^{re.escape(label)}\s*\*?$"))
    )


def trigger(page: Any, api: Api, demo: UiDemo) -> str:
    page.goto(f"{demo.airflow_url}/dags/{TUTORIAL}")
    before = {run["dag_run_id"] for run in api.get(f"/dags/{TUTORIAL}/dagRuns")["dag_runs"]}
    page.get_by_role("button", name="Trigger").first.click()
    page.get_by_role("dialog").get_by_role("button", name="Trigger").click()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = [r["dag_run_id"] for r in api.get(f"/dags/{TUTORIAL}/dagRuns")["dag_runs"]]
        new = [run_id for run_id in runs if run_id not in before]
        if new:
            log(f"triggered {TUTORIAL} from the UI: run {new[0]}")
            return new[0]
        time.sleep(1)
    raise AssertionError(f"no new {TUTORIAL} run appeared after pressing Trigger")


def wait_for_run(api: Api, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = api.get(f"/dags/{TUTORIAL}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise AssertionError(f"{TUTORIAL} run {run_id} did not end within {RUN_TIMEOUT} s")


def check_job_links(page: Any, api: Api, demo: UiDemo, run_id: str, emulator_port: int) -> None:
    """The "VBrain job" link once the provider defines it; the job page once the emulator serves one."""
    from playwright.sync_api import expect

    from airflow_provider_vbrain import get_provider_info

    if not get_provider_info().get("extra-links"):
        log('SKIPPED the "VBrain job" link: this version of the provider defines no extra link')
        return
    from vbrain_emulator import app as emulator_app

    serves_pages = hasattr(emulator_app, "UI_PREFIX")
    job_id = api.get(f"/dags/{TUTORIAL}/dagRuns/{run_id}/taskInstances/execute_job/xcomEntries/return_value")[
        "value"
    ]
    expected = f"http://127.0.0.1:{emulator_port}/ui/jobs/{job_id}"
    for task_id in ("execute_job", "wait_for_job"):
        # Airflow 3 lists a task's extra links on its Details tab.
        page.goto(f"{demo.airflow_url}/dags/{TUTORIAL}/runs/{run_id}/tasks/{task_id}/details")
        link = page.get_by_role("link", name="VBrain job")
        expect(link).to_have_attribute("href", expected)
        log(f'{task_id}: "VBrain job" links to {expected}')
    if not serves_pages:
        log("SKIPPED opening the job page: this version of the emulator serves no pages")
        return
    with page.context.expect_page() as opened:
        link.click()
    job_page = opened.value
    job_page.wait_for_load_state()
    expect(job_page.locator("body")).to_contain_text(job_id)
    log(f"the link opens the emulator's page of job {job_id}")


def main() -> int:
    ensure_chromium()
    started = time.monotonic()
    home = Path(tempfile.mkdtemp(prefix="vbrain-ui-test-"))
    port, emulator_port = free_port(), free_port()
    failed = False
    try:
        log(f"starting Airflow standalone (port {port}) and the emulator (port {emulator_port}) in {home}")
        with ui_demo(home, port, emulator_port, quiet=True) as demo:
            log(f"Airflow ready after {time.monotonic() - started:.0f} s")
            run_checks(demo, emulator_port)
    except Exception as err:
        failed = True
        log(f"FAILED: {type(err).__name__}: {err}")
        standalone_log = home / "standalone.log"
        if standalone_log.exists():
            print("--- last lines of standalone.log ---")
            print("\n".join(standalone_log.read_text(errors="replace").splitlines()[-40:]))
    if failed:
        log(f"kept {home} for inspection")
        return 1
    log(f"stopped everything it started, nothing left running; passed in {time.monotonic() - started:.0f} s")
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
