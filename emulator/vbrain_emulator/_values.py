"""Checks of JSON values that the emulator's modules share."""

from __future__ import annotations

import math
from typing import Any


def is_number(value: Any) -> bool:
    """A finite JSON number. JSON true/false arrive as bool, an int subclass; they are not numbers here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_non_negative_number(value: Any) -> bool:
    """A finite JSON number that is zero or more (durations, delays)."""
    return is_number(value) and value >= 0
