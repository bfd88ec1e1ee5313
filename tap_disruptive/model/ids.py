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


_ALPHABET = "0123456789abcdefghijklmnopqrstuv"
_TRIPLES: list[str] = []  # every 15-bit value as three base32hex digits, built on first use


def _triples() -> list[str]:
    if not _TRIPLES:
        _TRIPLES.extend(a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET)
    return _TRIPLES


class IdFactory:
    """Makes xid-format ids whose embedded second is the given time, as DT's event ids are.

    The first 14 characters depend only on the second, machine and pid, so they are cached per second and
    only the 6 characters carrying the counter are encoded per id: the emulator's fast feed makes many.
    """

    def __init__(self, machine: bytes | None = None, pid: int | None = None, start: int = 0) -> None:
        self._machine = (machine or os.urandom(3))[:3].rjust(3, b"\0")
        self._pid = (os.getpid() if pid is None else pid) & 0xFFFF
        self._pid_tail = (self._pid & 3) << 28
        self._counter = itertools.count(start)
        self._second = -1
        self._prefix = ""
        self._triples = _triples()

    def new_id(self, unix_seconds: float) -> str:
        return self.new_ids(unix_seconds, 1)[0]

    def new_ids(self, unix_seconds: float, count: int) -> list[str]:
        """`count` fresh ids of the same second."""
        second = int(unix_seconds) & 0xFFFFFFFF
        if second != self._second:
            raw = struct.pack(">I", second) + self._machine + struct.pack(">H", self._pid) + b"\0\0\0"
            self._second, self._prefix = second, base64.b32hexencode(raw)[:14].decode("ascii").lower()
        prefix, triples, pid_tail, counter = self._prefix, self._triples, self._pid_tail, self._counter
        # Characters 14..19 hold 30 bits: the pid's low 2 bits, the 24-bit counter, 4 bits of padding.
        tails = [pid_tail | ((next(counter) & 0xFFFFFF) << 4) for _ in range(count)]
        return [prefix + triples[tail >> 15] + triples[tail & 0x7FFF] for tail in tails]


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
