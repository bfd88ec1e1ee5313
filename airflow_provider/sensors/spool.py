"""DisruptiveSpoolSensor: waits for the first DT event in a receiver's spool that matches, and returns it
(XCom). No DT connection: the events are those Data Connectors pushed to `disruptive-receiver`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider.hooks.spool import check_source, spool_target
from airflow_provider.sensors.disruptive import DEFAULT_TIMEOUT, FILTER_FIELDS, FirstMatchSensor
from airflow_provider.triggers.spool import DisruptiveSpoolTrigger
from tap_disruptive.client.drivers.spool import SpoolReader
from tap_disruptive.client.protocol.errors import DisruptiveError


class DisruptiveSpoolSensor(FirstMatchSensor):
    """Waits, deferred (holding no worker slot), for an event of `project_ids` in the spool that passes
    DT's filters and `condition`; see DisruptiveSpoolTrigger for `spool` / `spool_conn_id`.

    Only rows that come after `start_seq` count; without it, only rows that come after the spool's newest
    when the sensor starts. That seq goes into the trigger, so a triggerer restart resumes from it. The
    worker and the triggerer must both reach the spool.
    """

    template_fields: Sequence[str] = ("project_ids", "spool", "spool_conn_id", *FILTER_FIELDS)

    def __init__(
        self,
        *,
        project_ids: Sequence[str] | str,
        spool: str | None = None,
        spool_conn_id: str | None = None,
        device_ids: list[str] | None = None,
        label_filters: dict[str, str | None] | None = None,
        device_types: list[str] | None = None,
        event_types: list[str] | None = None,
        condition: dict[str, Any] | None = None,
        start_seq: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        check_source(spool, spool_conn_id)
        self.project_ids = project_ids
        self.spool = spool
        self.spool_conn_id = spool_conn_id
        self.device_ids = device_ids
        self.label_filters = label_filters
        self.device_types = device_types
        self.event_types = event_types
        self.condition = condition
        self.start_seq = start_seq

    def execute(self, context: Any) -> None:
        start_seq = self.start_seq
        if start_seq is None:
            try:
                with SpoolReader(spool_target(self.spool, self.spool_conn_id)) as reader:
                    start_seq = reader.last_seq()
            except DisruptiveError as error:
                raise AirflowException(str(error)) from error
        self._defer_to(
            DisruptiveSpoolTrigger(
                project_ids=self.project_ids,
                spool=self.spool,
                spool_conn_id=self.spool_conn_id,
                **self._trigger_filters(),
                start_seq=start_seq,
            )
        )

    def poke(self, context: Any) -> bool:
        # Never called: execute defers. A poking sensor would lose its seq between reschedules.
        raise AirflowException("DisruptiveSpoolSensor only waits deferred")
