"""DAG-parse cost: what importing the operators, sensor and hook adds to ``import airflow``.

Every sample is a fresh interpreter (``python -``, code on stdin) pinned to one core, bytecode
cached. It times ``import airflow`` and then the variant's extra imports with
``time.perf_counter()``: the *added* time is measured inside the same process, right after
``import airflow``, so it does not carry the noise of interpreter start-up. The total (from just
before the parent starts the process to just after its imports) is kept for context. A warm-up
round first writes any missing bytecode, then the variants run round-robin, ``ROUNDS`` times each;
medians are reported.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import CLIENT_CORE, airflow_env, pinned, temp_dir

ROUNDS = 7
VARIANTS = {
    "airflow": ["airflow"],
    "airflow + vbrain": [
        "airflow",
        "airflow_provider_vbrain.operators.vbrain",
        "airflow_provider_vbrain.sensors.vbrain",
        "airflow_provider_vbrain.hooks.vbrain",
    ],
    "airflow + http provider": [
        "airflow",
        "airflow.providers.http.operators.http",
        "airflow.providers.http.sensors.http",
    ],
}
#: Modules a DAG file should not pay for until a task runs; reported when a variant loads them.
HEAVY = ["aiohttp", "requests", "zipfile", "vbrain_emulator.app", "tenacity"]
CHILD = """
import time
t0, c0 = time.perf_counter(), time.process_time()
import airflow
t1, c1 = time.perf_counter(), time.process_time()
{imports}
t2, c2 = time.perf_counter(), time.process_time()
now = time.time()
import json, sys
print(json.dumps({{
    "end": now, "airflow_ms": (t1 - t0) * 1e3, "added_ms": (t2 - t1) * 1e3, "added_cpu_ms": (c2 - c1) * 1e3,
    "heavy": [m for m in {heavy!r} if m in sys.modules],
}}))
"""


def _sample(modules: list[str], env: dict[str, str]) -> dict[str, Any]:
    code = CHILD.format(imports="\n".join(f"import {m}" for m in modules if m != "airflow"), heavy=HEAVY)
    start = time.time()
    # The code goes in on stdin: a command line naming no module is safe from `pkill -f airflow`.
    out = subprocess.run(
        pinned([sys.executable, "-"], CLIENT_CORE),
        input=code.encode(),
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    answer = json.loads(out.decode().strip().splitlines()[-1])
    answer["total_ms"] = (answer.pop("end") - start) * 1e3
    return answer


def run(quick: bool, log_dir: Path, say: Any = print) -> dict[str, Any]:
    home = temp_dir("vbrain-bench-parse-")
    env = airflow_env(home)
    # Bytecode cached, as on a deployed Airflow: let the warm-up round write what is missing.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    rounds = 1 if quick else ROUNDS
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    for round_number in range(rounds + (0 if quick else 1)):
        for name, modules in VARIANTS.items():
            sample = _sample(modules, env)
            # The first full round only warms up (and writes missing bytecode); quick runs keep it.
            if quick or round_number > 0:
                samples[name].append(sample)

    def median(name: str, key: str) -> float:
        return round(statistics.median(s[key] for s in samples[name]), 1)

    result = {
        "rounds": rounds,
        "median_total_ms": {name: median(name, "total_ms") for name in VARIANTS},
        "median_import_airflow_ms": {name: median(name, "airflow_ms") for name in VARIANTS},
        "added_ms": {name: median(name, "added_ms") for name in VARIANTS if name != "airflow"},
        "added_cpu_ms": {name: median(name, "added_cpu_ms") for name in VARIANTS if name != "airflow"},
        "samples_added_ms": {
            name: [round(s["added_ms"], 1) for s in samples[name]] for name in VARIANTS if name != "airflow"
        },
        "heavy_modules_loaded": {
            name: sorted(set(samples[name][-1]["heavy"]) - set(samples["airflow"][-1]["heavy"]))
            for name in VARIANTS
        },
        "heavy_modules_after_import_airflow": samples["airflow"][-1]["heavy"],
    }
    for name, added in result["added_ms"].items():
        say(f"  parse {name:<24} +{added:6.1f} ms after import airflow")
    return result
