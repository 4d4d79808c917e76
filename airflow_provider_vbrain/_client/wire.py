"""What the VBrain reference (and HTTP) fixes on the wire, as the client sends it.

Plain constants. The job states are :class:`~airflow_provider_vbrain.jobs.JobState`'s. The emulator,
a distribution of its own, keeps its copy (``vbrain_emulator.wire``); a test checks they agree.
"""

from __future__ import annotations

import re

#: Where VBrain lives when a connection names no host.
DEFAULT_BASE_URL = "https://vbrain.visagio.com"
#: Every endpoint's path starts with this.
API_PREFIX = "/api/v1"

#: The scoping headers every request carries, in the order the reference lists them.
ORGANIZATION_HEADER = "organization_id"
APPLICATION_HEADER = "application_id"
CLIENT_HEADER = "client_id"
USERNAME_HEADER = "username"
SCOPE_HEADERS = (ORGANIZATION_HEADER, APPLICATION_HEADER, CLIENT_HEADER, USERNAME_HEADER)
#: The secret API key's header.
API_KEY_HEADER = "x-api-key"
#: Job endpoints also name the repository the job lives in.
REPOSITORY_HEADER = "repository_id"

#: The multipart fields of the two create endpoints besides ``file``.
SUBMISSION_FIELDS = ("params", "metadata")
#: Input files VBrain accepts: a ZIP of all inputs, or one data file.
INPUT_SUFFIXES = (".zip", ".csv", ".xlsx", ".json")
#: The listing bounds' format (``from_date``, ``to_date``).
DATE_FORMAT = "%Y%m%d%H%M"

#: Characters no header value, and so no id sent in one, may hold.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a header value, or None; the same rule for both hooks.

    HTTP header values are latin-1 text without control characters, and the HTTP libraries
    refuse (or servers strip) whitespace around them. Both hooks send a value's UTF-8 bytes
    (aiohttp can send no other), so the sync and async hooks put the same bytes on the wire.
    """
    if CONTROL_CHARS.search(value):
        return "contains a control character (such as a newline)"
    if value != value.strip():
        return "starts or ends with whitespace, which HTTP drops or refuses"
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return "holds characters outside latin-1, which an HTTP header cannot carry"
    return None
