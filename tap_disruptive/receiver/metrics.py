"""What this receiver process has seen since it started, for GET /metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tap_disruptive.receiver import signature

BAD_BODY = "bad_body"
TOO_LARGE = "too_large"
REFUSAL_REASONS = (*signature.REASONS, BAD_BODY, TOO_LARGE)


@dataclass
class Counters:
    # Every POST to the push path; each ends as stored, duplicate, refused (4xx) or failed (503).
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    failed: int = 0
    refused: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "failed": self.failed,
            "refused": {reason: self.refused[reason] for reason in REFUSAL_REASONS},
        }
