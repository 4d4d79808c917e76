"""OpenLineage for the operators: which files went in, which came out, and the VBrain job between.

A repository and a job are datasets in the namespace ``vbrain://<host>``, named
``<organization>/<client>/<application>/repositories/<repository_id>[/jobs/<job_id>]``,
so a file uploaded to a repository, the job run in it and the output downloaded from
that job join up in a lineage graph. Every run also carries a ``vbrain`` run facet
with the same ids.

The OpenLineage provider is optional: its names are imported only when Airflow's
OpenLineage listener asks an operator for its lineage, which it does only where the
provider is installed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from airflow_provider_vbrain._airflow.compat import find

if TYPE_CHECKING:
    from airflow_provider_vbrain.connection import VBrainSettings

__all__ = ["FACET_NAME", "Place", "file_place", "job_place", "lineage", "repository_place"]

#: The run facet's key in OpenLineage events.
FACET_NAME = "vbrain"
_SCHEMA_URL = (
    "https://github.com/visagio/airflow-provider-vbrain/blob/main/docs/operators.md#the-vbrain-run-facet"
)


class Place(NamedTuple):
    """A dataset as OpenLineage names it."""

    namespace: str
    name: str


def file_place(location: Any) -> Place:
    """A local path (namespace ``file``, absolute path) or an object-storage location such as
    ``s3://bucket/key`` (namespace ``s3://bucket``, name ``key``), as OpenLineage's naming rules say."""
    # str() and never the object's filesystem: a path on an object store whose client is not
    # installed cannot build one, and its name is all lineage needs.
    text = str(location)
    if "://" not in text:
        return Place("file", os.path.abspath(text))
    parts = urlsplit(text)
    if parts.scheme == "file":
        return Place("file", parts.path)
    return Place(f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/"))


def repository_place(settings: VBrainSettings, application_id: str | None, repository_id: str) -> Place:
    """A repository: VBrain scopes repositories by organization, client and application together."""
    scope = "/".join((settings.organization_id, settings.client_id, _application(settings, application_id)))
    return Place(_namespace(settings), f"{scope}/repositories/{repository_id}")


def job_place(settings: VBrainSettings, application_id: str | None, repository_id: str, job_id: str) -> Place:
    """A job, inside its repository."""
    repository = repository_place(settings, application_id, repository_id)
    return Place(repository.namespace, f"{repository.name}/jobs/{job_id}")


def lineage(
    settings: VBrainSettings,
    application_id: str | None,
    *,
    inputs: Iterable[Place] = (),
    outputs: Iterable[Place] = (),
    repository_id: str | None = None,
    job_id: str | None = None,
) -> Any:
    """The ``OperatorLineage`` of one task, or None where the OpenLineage provider is missing."""
    operator_lineage = find("OperatorLineage", "airflow.providers.openlineage.extractors")
    dataset = find("Dataset", "openlineage.client.event_v2")
    facet = _facet_class()
    if operator_lineage is None or dataset is None or facet is None:
        return None
    return operator_lineage(
        inputs=[dataset(namespace=place.namespace, name=place.name) for place in inputs],
        outputs=[dataset(namespace=place.namespace, name=place.name) for place in outputs],
        run_facets={
            FACET_NAME: facet(
                host=settings.base_url,
                organization_id=settings.organization_id,
                client_id=settings.client_id,
                application_id=_application(settings, application_id),
                # Ids are text on the wire; a template rendered as a native object may have made a number.
                repository_id=None if repository_id is None else str(repository_id),
                job_id=None if job_id is None else str(job_id),
            )
        },
    )


def _namespace(settings: VBrainSettings) -> str:
    return "vbrain://" + urlsplit(settings.base_url).netloc


def _application(settings: VBrainSettings, application_id: str | None) -> str:
    return application_id or settings.application_id or ""


@functools.cache
def _facet_class() -> Any:
    """The ``vbrain`` run facet, defined on first use: its base class comes from the optional client."""
    run_facet = find("RunFacet", "openlineage.client.facet_v2")
    if run_facet is None:
        return None
    import attrs

    @attrs.define
    class VBrainRunFacet(run_facet):  # type: ignore[misc,valid-type]
        """Where a task's VBrain repository and job live."""

        host: str
        organization_id: str
        client_id: str
        application_id: str
        repository_id: str | None = None
        job_id: str | None = None

        @staticmethod
        def _get_schema() -> str:
            return _SCHEMA_URL

    return VBrainRunFacet
