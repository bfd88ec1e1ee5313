"""DisruptiveEventOperator: listens for matching DT events over a bounded window and returns them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_provider.conditions import check, import_function
from airflow_provider.hooks.disruptive import DisruptiveHook
from airflow_provider.triggers.disruptive import DisruptiveEventTrigger
from tap_disruptive.model.times import format_timestamp


class DisruptiveEventOperator(BaseOperator):
    """Collects DT events that pass DT's filters and `condition`, until `max_events` have come or
    `window_seconds` have passed (at least one bound is needed), deferring while it waits. Each event is
    then handed to `on_event` (a callable, or a dotted path to one) on the worker, and the list of events
    is returned (XCom)."""

    template_fields: Sequence[str] = (
        "project_id",
        "device_ids",
        "label_filters",
        "device_types",
        "event_types",
        "condition",
        "disruptive_conn_id",
    )

    def __init__(
        self,
        *,
        project_id: str | None = None,
        device_ids: list[str] | None = None,
        label_filters: dict[str, str | None] | None = None,
        device_types: list[str] | None = None,
        event_types: list[str] | None = None,
        condition: dict[str, Any] | None = None,
        max_events: int | None = None,
        window_seconds: float | None = None,
        on_event: Callable[[dict[str, Any]], Any] | str | None = None,
        disruptive_conn_id: str = DisruptiveHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_events is None and window_seconds is None:
            raise ValueError("give max_events, window_seconds or both: the window must end")
        self.project_id = project_id
        self.device_ids = device_ids
        self.label_filters = label_filters
        self.device_types = device_types
        self.event_types = event_types
        self.condition = condition
        self.max_events = max_events
        self.window_seconds = window_seconds
        self.on_event = on_event
        self.disruptive_conn_id = disruptive_conn_id

    def execute(self, context: Any) -> None:
        timeout = None if self.window_seconds is None else timedelta(seconds=self.window_seconds + 120)
        self.defer(
            trigger=DisruptiveEventTrigger(
                project_id=self.project_id,
                device_ids=self.device_ids,
                label_filters=self.label_filters,
                device_types=self.device_types,
                event_types=self.event_types,
                condition=check(self.condition) if self.condition is not None else None,
                disruptive_conn_id=self.disruptive_conn_id,
                start_time=format_timestamp(time.time()),
                max_events=self.max_events or 2**31,
                window_seconds=self.window_seconds,
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("status") != "success":
            raise AirflowException(event.get("message") or "the trigger failed")
        events: list[dict[str, Any]] = event["events"]
        callback = import_function(self.on_event) if isinstance(self.on_event, str) else self.on_event
        if callback is not None:
            for found in events:
                callback(found)
        return events
