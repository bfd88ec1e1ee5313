"""A spool's blocking calls run on a thread of their own, each with a deadline, so the event loop keeps
answering and a stalled disk or database turns into a 503 (DT re-sends) instead of a hung request.

One thread: SQLite writes one at a time anyway, and a PostgreSQL spool holds one connection. A call that
misses its deadline still finishes on that thread; if it stored the push, DT's re-send is a duplicate.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from tap_disruptive.model.pushes import Push
from tap_disruptive.spool.base import Appended, Spool, SpoolError, SpoolStats

T = TypeVar("T")


class OffloadedSpool:
    def __init__(self, spool: Spool, deadline: float) -> None:
        self.spool = spool
        self.kind = spool.kind
        self._deadline = deadline
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")

    async def _run(self, call: Callable[[], T]) -> T:
        future = asyncio.get_running_loop().run_in_executor(self._thread, call)
        try:
            return await asyncio.wait_for(future, self._deadline)
        except TimeoutError:
            raise SpoolError(f"the spool did not answer within {self._deadline:g} s") from None

    async def append(self, push: Push, received_at: float) -> Appended:
        return await self._run(functools.partial(self.spool.append, push, received_at))

    async def prune(self, older_than: float) -> int:
        return await self._run(functools.partial(self.spool.prune, older_than))

    async def stats(self) -> SpoolStats:
        return await self._run(self.spool.stats)

    async def ping(self) -> None:
        await self._run(self.spool.ping)

    def close(self) -> None:
        """Let queued writes finish, then close the spool."""
        self._thread.shutdown(wait=True)
        self.spool.close()
