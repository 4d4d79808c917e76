"""Downloads stream to disk: a large output never sits whole in the client's memory."""

from __future__ import annotations

import re
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_vbrain.hooks.vbrain import VBrainHook
from tests.conftest import connection_json

OUTPUT_BYTES = 24 * 1024 * 1024


@pytest.fixture
def emulator_with_big_outputs(tmp_path: Path) -> Iterator[str]:
    """An emulator in its own process (so its memory is not ours) serving an application
    whose output file is incompressible and large."""
    (tmp_path / "big_apps.py").write_text(
        "import os\n"
        "from vbrain_emulator import ApplicationResult\n"
        "def big(params, input_files):\n"
        f"    blob = os.urandom({OUTPUT_BYTES})\n"
        "    return ApplicationResult(output={'ok': True}, files={'big.bin': blob})\n"
    )
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "vbrain_emulator", "--port", "0", "--quiet"),
            *("--queue-seconds", "0", "--run-seconds", "0", "--application", "Big=big_apps:big"),
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"listening on (\S+)", process.stdout.readline())
        assert match, "the emulator did not start"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_large_output_is_streamed_to_disk(
    emulator_with_big_outputs: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_VBRAIN_DEFAULT", connection_json(emulator_with_big_outputs))
    hook = VBrainHook(application_id="Big")
    repository_id = hook.create_repository()
    job_id = hook.execute_job(repository_id)
    hook.wait_for_job(job_id, repository_id, poll_interval=0.05)

    tracemalloc.start()
    try:
        written = hook.download_job_output(job_id, repository_id, tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert Path(written).stat().st_size > OUTPUT_BYTES
    with zipfile.ZipFile(written) as archive:
        assert archive.getinfo("big.bin").file_size == OUTPUT_BYTES
    assert peak < OUTPUT_BYTES / 4, f"the download held {peak:,} bytes at once"
