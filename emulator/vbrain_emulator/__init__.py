"""A local emulator of the VBrain REST API, for developing and testing DAGs offline.

Run it with ``python -m vbrain_emulator --port 8765`` (or ``vbrain-emulator``), or in
a test with :class:`EmulatorServer` / the ``vbrain_emulator`` pytest fixture. It never imports Airflow.

Attributes are imported on first use, so importing this package (as pytest does for the plugin) stays
cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vbrain_emulator.app import create_app
    from vbrain_emulator.applications import (
        Application,
        ApplicationError,
        ApplicationResult,
        application_names,
        register_application,
        unregister_application,
    )
    from vbrain_emulator.profiles import PROFILES, Profile, ProfileError
    from vbrain_emulator.server import EmulatorServer
    from vbrain_emulator.state import EmulatorState

__version__ = "0.1.0"

__all__ = [
    "PROFILES",
    "Application",
    "ApplicationError",
    "ApplicationResult",
    "EmulatorServer",
    "EmulatorState",
    "Profile",
    "ProfileError",
    "application_names",
    "create_app",
    "register_application",
    "unregister_application",
]

_LOCATIONS = {
    "Application": "applications",
    "ApplicationError": "applications",
    "ApplicationResult": "applications",
    "application_names": "applications",
    "register_application": "applications",
    "unregister_application": "applications",
    "EmulatorServer": "server",
    "PROFILES": "profiles",
    "Profile": "profiles",
    "ProfileError": "profiles",
    "EmulatorState": "state",
    "create_app": "app",
}


def __getattr__(name: str) -> Any:
    module = _LOCATIONS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
