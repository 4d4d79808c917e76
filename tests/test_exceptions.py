"""The error tree."""

from __future__ import annotations

import pickle

import pytest

from airflow_provider_vbrain.exceptions import (
    VBrainConnectionError,
    VBrainError,
    VBrainInputError,
    VBrainJobFailedError,
    VBrainMaybeCreatedError,
    VBrainServerError,
)


@pytest.mark.parametrize(
    "error",
    [
        VBrainServerError("GET /x", 500, "boom", 3),
        VBrainConnectionError("GET /x", "timed out", 2),
        VBrainMaybeCreatedError("POST /x", "job", "timed out", "check"),
        VBrainJobFailedError("j", "r", "failed", "tail"),
        VBrainInputError("params", "bad"),
    ],
    ids=type,
)
def test_errors_survive_pickling(error: VBrainError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
