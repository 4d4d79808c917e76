"""The one error the emulator's store and handlers raise for an API answer other than success."""

from __future__ import annotations

__all__ = ["EmulatorError"]


class EmulatorError(Exception):
    """An API error the handlers answer as ``status`` with ``{"error": message}``.

    :param status: the HTTP status.
    :param message: the ``error`` text, worded like the platform's.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
