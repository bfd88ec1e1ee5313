"""Retention: every `every` seconds, delete what was received more than `keep` seconds ago."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tap_disruptive.receiver.logs import LOG
from tap_disruptive.spool import SpoolError
from tap_disruptive.spool.offload import OffloadedSpool


async def prune_periodically(
    spool: OffloadedSpool, keep: float, every: float, clock: Callable[[], float] = time.time
) -> None:
    """Runs until cancelled; a failed prune is logged and tried again next time."""
    while True:
        try:
            removed = await spool.prune(clock() - keep)
        except SpoolError as error:
            LOG.warning("pruning the spool failed: %s", error)
        else:
            if removed:
                LOG.info("pruned %d events received more than %g hours ago", removed, keep / 3600)
        await asyncio.sleep(every)
