"""The spool driver: carries out `protocol.spooled`'s steps against a receiver's spool (a SQLite file or
PostgreSQL). Written once, async: the spool's blocking reads run on a thread of their own, so Airflow's
triggerer keeps its loop; `SpoolReader` runs the same code on a private loop for the Singer tap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Generator
from concurrent.futures import ThreadPoolExecutor

from tap_disruptive.client.drivers.sync import PrivateLoop, _each
from tap_disruptive.client.protocol.commands import Sleep
from tap_disruptive.client.protocol.errors import FatalError
from tap_disruptive.client.protocol.filters import EventFilter
from tap_disruptive.client.protocol.spooled import (
    ReadSpool,
    SpoolDelivery,
    SpoolRows,
    SpoolSettings,
    SpoolStats,
    SpoolUnavailable,
    follow_spool,
)
from tap_disruptive.spool import Spool, SpoolError, SpoolMissing, open_spool, shown_target


class AsyncSpoolReader:
    """A spool, read from a position on. `target`: the receiver's `--spool` (a file path or a
    postgresql:// URL). Nothing is opened until the first read."""

    def __init__(self, target: str, settings: SpoolSettings | None = None) -> None:
        self.target = target
        self.settings = settings or SpoolSettings()
        self.stats = SpoolStats()
        self._spool: Spool | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-reader")

    def __repr__(self) -> str:
        return f"AsyncSpoolReader({shown_target(self.target)!r})"

    def _open(self) -> Spool:
        if self._spool is None:
            try:
                self._spool = open_spool(self.target, create=False)
            except SpoolMissing as error:
                raise FatalError(str(error)) from None
        return self._spool

    def _read(self, command: ReadSpool) -> SpoolRows | SpoolUnavailable:
        try:
            spool = self._open()
            rows = spool.read(command.after_seq, command.limit)
            pruned_through = spool.pruned_through()
        except SpoolError as error:
            return SpoolUnavailable(str(error))
        return SpoolRows([(row.seq, row.body) for row in rows], pruned_through)

    async def last_seq(self) -> int:
        """The seq of the newest row (0 for an empty spool): where a reader that wants only what comes
        next starts."""

        def read() -> int:
            return self._open().last_seq()

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, read)
        except SpoolError as error:
            raise SpoolUnavailable(str(error)) from None

    async def deliveries(
        self,
        after_seq: int,
        project_ids: Collection[str],
        event_filter: EventFilter | None = None,
        *,
        since: str | None = None,
        live: bool = True,
    ) -> AsyncIterator[SpoolDelivery]:
        """Every matching event after `after_seq`, a batch at a time; see `spooled.follow_spool`."""
        steps = follow_spool(
            after_seq,
            project_ids,
            event_filter or EventFilter(),
            self.settings,
            self.stats,
            since=since,
            live=live,
        )
        loop = asyncio.get_running_loop()
        answer: SpoolRows | SpoolUnavailable | None = None
        try:
            while True:
                command = steps.send(answer)
                answer = None
                if isinstance(command, ReadSpool):
                    answer = await loop.run_in_executor(self._thread, self._read, command)
                elif isinstance(command, Sleep):
                    await asyncio.sleep(command.seconds)
                else:
                    yield command
        except StopIteration:
            return
        finally:
            steps.close()

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    def _close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class SpoolReader:
    """The same reader for synchronous code."""

    def __init__(self, target: str, settings: SpoolSettings | None = None) -> None:
        self._loop = PrivateLoop()
        self.aio = AsyncSpoolReader(target, settings)

    @property
    def stats(self) -> SpoolStats:
        return self.aio.stats

    def last_seq(self) -> int:
        return self._loop.run(self.aio.last_seq())

    def deliveries(
        self,
        after_seq: int,
        project_ids: Collection[str],
        event_filter: EventFilter | None = None,
        *,
        since: str | None = None,
        live: bool = True,
    ) -> Generator[SpoolDelivery, None, None]:
        iterator = self.aio.deliveries(after_seq, project_ids, event_filter, since=since, live=live)
        try:
            yield from _each(self._loop, iterator)
        finally:
            self._loop.run(iterator.aclose())  # type: ignore[attr-defined]

    def close(self) -> None:
        try:
            self._loop.run(self.aio.aclose())
        finally:
            self._loop.close()

    def __enter__(self) -> SpoolReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
