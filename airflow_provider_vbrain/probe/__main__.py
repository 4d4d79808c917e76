"""``python -m airflow_provider_vbrain.probe``: the same as the ``vbrain-probe`` command."""

from __future__ import annotations

import sys

from airflow_provider_vbrain.probe import main

if __name__ == "__main__":
    sys.exit(main())
