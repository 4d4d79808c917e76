"""The "VBrain job" link on a task: the job's page in VBrain's web UI.

VBrain's API reference does not say where its web UI lives, so the address comes
from the connection's ``job_url_template`` extra; without one the link stays empty.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_vbrain._airflow.compat import BaseOperatorLink, xcom_value

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["JOB_LINK_XCOM_KEY", "VBrainJobLink"]

#: The XCom in which a task records its job's page (the link's ``xcom_key`` on Airflow 3).
JOB_LINK_XCOM_KEY = "vbrain_job_url"


class VBrainJobLink(BaseOperatorLink):
    """The page of the job a task submitted or waits on, recorded by the task as XCom ``vbrain_job_url``.

    Airflow 3 asks ``get_link`` on the worker when the task ends and keeps the answer
    for the UI under :attr:`xcom_key`; Airflow 2's webserver asks it when the UI shows
    the task. Both read the XCom the task pushed, so the link holds ids only, never
    a secret, and no connection is read to show it.
    """

    name = "VBrain job"

    @property
    def xcom_key(self) -> str:
        return JOB_LINK_XCOM_KEY

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        return xcom_value(ti_key, JOB_LINK_XCOM_KEY) or ""
