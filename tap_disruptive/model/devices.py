"""DT's device resource, as the API returns it: the one shape devices travel in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from tap_disruptive.model.ids import split_target_name


@dataclass(frozen=True, slots=True)
class Device:
    project_id: str
    device_id: str
    # None when DT does not say (the filter then lets the server decide).
    device_type: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    product_number: str | None = None
    # The latest payload of each event type, as DT reports it (None: never reported).
    reported: Mapping[str, Any] | None = None

    @property
    def name(self) -> str:
        return f"projects/{self.project_id}/devices/{self.device_id}"

    @property
    def display_name(self) -> str | None:
        """Studio's name for the device: its `name` label."""
        return self.labels.get("name")

    def with_label_change(self, change: Any) -> Device:
        """The device after a labelsChanged event's payload (`added`, `modified`, `removed`)."""
        if not isinstance(change, Mapping):
            return self
        return replace(self, labels=labels_after_change(self.labels, change))

    @classmethod
    def from_resource(cls, resource: Any) -> Device:
        """A device from DT's JSON resource; ValueError if it is not one."""
        if not isinstance(resource, dict):
            raise ValueError("a device resource is a JSON object")
        name = resource.get("name")
        project_id, device_id = split_target_name(name) if isinstance(name, str) else ("", None)
        if not device_id:
            raise ValueError(f"a device resource without a device name: {str(name)[:100]!r}")
        device_type, labels = resource.get("type"), resource.get("labels")
        reported = resource.get("reported")
        return cls(
            project_id=project_id,
            device_id=device_id,
            device_type=device_type if isinstance(device_type, str) and device_type else None,
            labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
            product_number=str(resource.get("productNumber") or "") or None,
            reported=reported if isinstance(reported, dict) else None,
        )


def labels_after_change(labels: Mapping[str, str], change: Mapping[str, Any]) -> dict[str, str]:
    """A new dict of labels after a labelsChanged event's payload (`added`, `modified`, `removed`); the
    labels given are left as they were."""
    changed = dict(labels)
    for key in ("added", "modified"):
        if isinstance(change.get(key), Mapping):
            changed.update({str(k): str(v) for k, v in change[key].items()})
    for key in change.get("removed") or ():
        changed.pop(str(key), None)
    return changed
