"""DisruptiveEventSensor: waits for the first DT event that matches, and returns it (XCom)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypedDict

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger

from airflow_provider.conditions import check, evaluate
from airflow_provider.hooks.disruptive import DisruptiveHook
from airflow_provider.triggers.disruptive import DisruptiveEventTrigger, event_document
from tap_disruptive.client.protocol.errors import DisruptiveError
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.model.times import format_timestamp

DEFAULT_TIMEOUT = timedelta(hours=1).total_seconds()
# DT's four filters and the condition: every sensor takes them, templated.
FILTER_FIELDS = ("device_ids", "label_filters", "device_types", "event_types", "condition")


class TriggerFilters(TypedDict):
    """The filters and the condition as the triggers take them."""

    device_ids: list[str] | None
    label_filters: dict[str, str | None] | None
    device_types: list[str] | None
    event_types: list[str] | None
    condition: dict[str, Any] | None


class FirstMatchSensor(BaseSensorOperator):
    """What the provider's sensors share: they hand their filters and condition (`FILTER_FIELDS`, set by
    each sensor) to a trigger, wait for it deferred, and return the match it fires (XCom)."""

    device_ids: list[str] | None
    label_filters: dict[str, str | None] | None
    device_types: list[str] | None
    event_types: list[str] | None
    condition: dict[str, Any] | None

    def _trigger_filters(self) -> TriggerFilters:
        """The sensor's filters and condition, the condition checked once rendered."""
        return TriggerFilters(
            device_ids=self.device_ids,
            label_filters=self.label_filters,
            device_types=self.device_types,
            event_types=self.event_types,
            condition=check(self.condition) if self.condition is not None else None,
        )

    def _defer_to(self, trigger: BaseTrigger) -> None:
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("status") != "success":
            raise AirflowException(event.get("message") or "the trigger failed")
        return event["event"]


class DisruptiveEventSensor(FirstMatchSensor):
    """Waits for a DT event of `project_id` that passes DT's filters and `condition`.

    Deferrable by default: the wait happens in the triggerer and holds no worker slot. With
    `deferrable=False` it pokes, reading event history since the sensor started. Events from before
    the sensor started never count.
    """

    template_fields: Sequence[str] = ("project_id", *FILTER_FIELDS, "disruptive_conn_id")

    def __init__(
        self,
        *,
        project_id: str | None = None,
        device_ids: list[str] | None = None,
        label_filters: dict[str, str | None] | None = None,
        device_types: list[str] | None = None,
        event_types: list[str] | None = None,
        condition: dict[str, Any] | None = None,
        disruptive_conn_id: str = DisruptiveHook.default_conn_name,
        deferrable: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.project_id = project_id
        self.device_ids = device_ids
        self.label_filters = label_filters
        self.device_types = device_types
        self.event_types = event_types
        self.condition = condition
        self.disruptive_conn_id = disruptive_conn_id
        self.deferrable = deferrable
        self._started_at: str | None = None

    def _filter(self) -> EventFilter:
        return EventFilter.of(self.device_ids, self.label_filters, self.device_types, self.event_types)

    def _since(self, context: Any) -> str:
        """When the sensor started: its task instance's start (kept across reschedules), else now."""
        instance = context.get("ti") if hasattr(context, "get") else None
        started = getattr(instance, "start_date", None)
        return format_timestamp(started.timestamp() if started is not None else time.time())

    def execute(self, context: Any) -> Any:
        self._started_at = self._since(context)
        if not self.deferrable:
            return super().execute(context)
        self._defer_to(
            DisruptiveEventTrigger(
                project_id=self.project_id,
                **self._trigger_filters(),
                disruptive_conn_id=self.disruptive_conn_id,
                start_time=self._started_at,
            )
        )

    def poke(self, context: Any) -> PokeReturnValue:
        hook = DisruptiveHook(self.disruptive_conn_id)
        project_id = self.project_id or hook.default_project_id()
        if not project_id:
            raise AirflowException("no project_id, and the connection has none in its extra")
        started = self._started_at or self._since(context)
        self._started_at = started
        event_filter = self._filter()
        try:
            with hook.get_conn() as client:
                events = client.history(project_id, started, None, event_filter)
        except DisruptiveError as error:
            raise AirflowException(str(error)) from error
        for found in events:  # oldest first: the first match by time
            document = event_document(found)
            if evaluate(self.condition, document):
                return PokeReturnValue(is_done=True, xcom_value=document)
        return PokeReturnValue(is_done=False)
