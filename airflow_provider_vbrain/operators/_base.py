"""What every VBrain operator shares: the connection arguments, and for the two create operators,
the exactly-once arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow_provider_vbrain._airflow.compat import BaseOperator
from airflow_provider_vbrain._tasks.reattach import (
    DEFAULT_SETTLE_SECONDS,
    ON_UNKNOWN_CHOICES,
    Lookup,
    Reattach,
)
from airflow_provider_vbrain._tasks.store import CreateStore, create_once, resume
from airflow_provider_vbrain._tasks.tag import Tag
from airflow_provider_vbrain._tasks.task import VBrainTaskMixin, seconds

T = TypeVar("T")
_UI_COLOR = "#d7ecf9"


class _VBrainOperator(VBrainTaskMixin, BaseOperator):
    """Connection arguments shared by every VBrain operator."""

    ui_color = _UI_COLOR

    def __init__(
        self, *, vbrain_conn_id: str = "vbrain_default", application_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.vbrain_conn_id = vbrain_conn_id
        self.application_id = application_id


class _VBrainCreateOperator(_VBrainOperator):
    """What the two create operators share: the exactly-once arguments."""

    def __init__(
        self,
        *,
        reattach_on_retry: bool = True,
        on_unknown_earlier: str = "fail",
        reattach_settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if on_unknown_earlier not in ON_UNKNOWN_CHOICES:
            raise ValueError(
                f"on_unknown_earlier must be one of {ON_UNKNOWN_CHOICES}, got {on_unknown_earlier!r}"
            )
        self.reattach_on_retry = reattach_on_retry
        self.on_unknown_earlier = on_unknown_earlier
        self.reattach_settle_seconds = seconds(reattach_settle_seconds) or 0.0

    def reattach(self, what: str, find: Callable[[], Lookup[T]], ident: Callable[[T], str]) -> Reattach[T]:
        """The exactly-once rules for this try, with this operator's settings."""
        return Reattach(
            what,
            find,
            ident,
            enabled=self.reattach_on_retry,
            on_unknown=self.on_unknown_earlier,
            settle_seconds=self.reattach_settle_seconds,
            log=self.log,
        )

    def open_store(
        self, context: Any, what: str, scope: Mapping[str, Any] | None = None
    ) -> CreateStore | None:
        """This task's record in Airflow's task state store (3.3+), first thing in a try; None where
        there is no store, or with ``reattach_on_retry=False`` (which never looks)."""
        return CreateStore.open(context, what, scope) if self.reattach_on_retry else None

    def earlier(
        self,
        context: Any,
        store: CreateStore | None,
        tag: Tag,
        reattach: Reattach[T],
        reusable: Callable[[str], T | None],
    ) -> T | None:
        """What an earlier try created and this one reuses: by the store's record, else by tag."""
        try_number = int(context["ti"].try_number)
        return resume(store, tag, reattach, reusable, try_number, self.log, type(self).__name__)

    def create_once(
        self, store: CreateStore | None, tag: Tag, reattach: Reattach[Any], create: Callable[[], str]
    ) -> str:
        """Create, recorded in the store around the create; a lost answer is looked for by tag."""
        return create_once(store, tag, reattach, create, self.log)
