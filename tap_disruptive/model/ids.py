"""DT identifiers: 20-character xids, resource names, and the ids inside them."""

from __future__ import annotations

import base64
import itertools
import os
import re
import struct

# DT ids are rs/xid values: 12 bytes (unix seconds, machine id, pid, counter) in lowercase base32hex.
ID_PATTERN = re.compile(r"^[0-9a-v]{20}$")
EMULATED_DEVICE_PREFIX = "emu"


class IdFactory:
    """Makes xid-format ids whose embedded second is the given time, as DT's event ids are."""

    def __init__(self, machine: bytes | None = None, pid: int | None = None, start: int = 0) -> None:
        self._machine = (machine or os.urandom(3))[:3].rjust(3, b"\0")
        self._pid = (os.getpid() if pid is None else pid) & 0xFFFF
        self._counter = itertools.count(start)

    def new_id(self, unix_seconds: float) -> str:
        counter = next(self._counter) & 0xFFFFFF
        raw = (
            struct.pack(">I", int(unix_seconds) & 0xFFFFFFFF)
            + self._machine
            + struct.pack(">H", self._pid)
            + counter.to_bytes(3, "big")
        )
        return base64.b32hexencode(raw)[:20].decode("ascii").lower()


def id_seconds(xid: str) -> int:
    """The unix second embedded in an xid."""
    raw = base64.b32hexdecode(xid.upper() + "====")
    return int(struct.unpack(">I", raw[:4])[0])


def project_name(project_id: str) -> str:
    return f"projects/{project_id}"


def device_name(project_id: str, device_id: str) -> str:
    return f"projects/{project_id}/devices/{device_id}"


def split_target_name(target_name: str) -> tuple[str, str | None]:
    """(project id, device id or None) of ``projects/p`` or ``projects/p/devices/d``.

    Raises ValueError for any other shape.
    """
    parts = target_name.split("/")
    if len(parts) == 2 and parts[0] == "projects" and parts[1]:
        return parts[1], None
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == "devices" and parts[1] and parts[3]:
        return parts[1], parts[3]
    raise ValueError(f"not a DT target name: {target_name!r}")
