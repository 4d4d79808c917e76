"""What the VBrain reference fixes on the wire, as the emulator serves it.

The provider keeps its own copy of these names (``airflow_provider_vbrain._client.wire``): the
emulator is a distribution of its own and imports nothing of the provider. A test of the
repository checks that both read the reference the same way.
"""

from __future__ import annotations

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

#: ``job_status`` values: queued and started answer HTTP 202, finished and failed 200.
QUEUED, STARTED, FINISHED, FAILED = "queued", "started", "finished", "failed"

#: The multipart fields of the two create endpoints besides ``file``.
SUBMISSION_FIELDS = ("params", "metadata")
#: Input files VBrain accepts: a ZIP of all inputs, or one data file.
INPUT_SUFFIXES = (".zip", ".csv", ".xlsx", ".json")
#: The listing bounds' format (``from_date``, ``to_date``).
DATE_FORMAT = "%Y%m%d%H%M"
