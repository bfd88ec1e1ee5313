"""Where the tap leans on the Singer SDK beyond its public surface: every such place is here, and
tests/test_sdk_seams.py fails loudly if the SDK changes beneath any of them.

The SDK has no public hook for seven things the tap needs:
- `--about` in plain text with each setting's description (the SDK's text lists names and types only);
- no "unhandled error" report from the SDK for a DT error the tap reports itself, in one line;
- its input files and variables read with one clear line per problem (the SDK raises tracebacks on a
  missing or garbage file, and leaves numbers from the environment as strings);
- bookmarks that are not the largest record value: ours come from the protocol (a time up to which
  everything has been written), so the SDK must not move them from record values;
- STATE written on a timer (the SDK writes it every `STATE_MSG_FREQUENCY` records), so that a quiet
  stream's bookmark still reaches the target;
- a signal that ends the run at its next checkpoint instead of writing STATE from the signal handler,
  which can cut a RECORD in half;
- records written a batch at a time: the SDK's record path (a message object, deselection, maps and a
  write for every record) costs several times what reading DT's stream does. Where no stream map,
  flattening or deselection changes records, batches go straight to the writer; otherwise the
  stream's records go through the SDK's own path.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import sys
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import click
from singer_sdk import Stream, Tap
from singer_sdk.about import AboutInfo, TextFormatter
from singer_sdk.plugin_base import _ConfigInput

from tap_disruptive.client.protocol.errors import DisruptiveError
from tap_disruptive.tap.inputs import read_config, read_json_object, read_state
from tap_disruptive.tap.output import SingerLineWriter

# What the tap overrides or calls, and the parameters each is expected to take.
SEAMS: dict[str, tuple[type, tuple[str, ...]]] = {
    "_increment_stream_state": (Stream, ("self", "latest_record", "context")),
    "_write_state_message": (Stream, ("self",)),
    "_handle_termination": (Tap, ("self", "signum", "frame")),
    "_sync_records": (Stream, ("self", "context", "write_messages")),
    "cb_config": (Tap, ("ctx", "param", "value")),
}


# The line the SDK logs (at ERROR, on the stream's logger) when a stream's sync raises.
SDK_SYNC_FAILED = "An unhandled error occurred while syncing"


class ReportedErrorsOnce(logging.Filter):
    """Drops the SDK's report of a failed stream when the failure is a DT error: the tap's own line
    (see `plugin.main`) says what is wrong, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        raised = sys.exc_info()[1]
        return not (isinstance(raised, DisruptiveError) and str(record.msg).startswith(SDK_SYNC_FAILED))


class TextAboutWithDescriptions(TextFormatter, format_name="text"):
    """The SDK's plain `--about`, each setting followed by its title and description. (Registered under
    the SDK's own name, "text", it replaces the SDK's formatter in this process.)"""

    def format_about(self, about_info: AboutInfo) -> str:
        properties = about_info.settings.get("properties", {})
        lines, name = [], None
        for line in super().format_about(about_info).splitlines():
            lines.append(line)
            if line.startswith("  - Name: "):
                name = line.removeprefix("  - Name: ")
            elif line.startswith("    Environment Variable: ") and name in properties:
                definition = properties[name]
                for label, key in (("Title", "title"), ("Description", "description")):
                    if definition.get(key):
                        lines.append(f"    {label}: {definition[key]}")
        return "\n".join(lines)


class CheckedInputs(Tap):
    """A tap whose `--config` files and `ENV`, `--state` and `--catalog` are read by `inputs`: the
    command's callbacks hand the SDK what it reads (a `_ConfigInput`, open files) already checked."""

    @classmethod
    def settings_schema(cls) -> dict[str, Any]:
        """The tap's settings with the SDK's own (stream maps, flattening, ...)."""
        schema = copy.deepcopy(cls.config_jsonschema)
        cls.append_builtin_config(schema)
        return schema

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> _ConfigInput:
        return _ConfigInput(config=read_config(value, cls.settings_schema()), parse_env=False)

    @classmethod
    def get_singer_command(cls) -> click.Command:
        command = super().get_singer_command()
        readers = {"state": read_state, "catalog": lambda path: read_json_object(path, "--catalog")}
        for index, param in enumerate(command.params):
            if param.name in readers:
                read = readers[param.name]
                command.params[index] = click.Option(
                    param.opts,
                    help=getattr(param, "help", None),
                    callback=lambda ctx, param, path, read=read: (
                        None if path is None else _as_file(read(path))
                    ),
                )
        return command


def _as_file(value: dict[str, Any]) -> io.StringIO:
    # The SDK reads these options as open files.
    return io.StringIO(json.dumps(value))


class BookmarksFromTheSource(Stream):
    """A stream whose bookmarks its source sets (through `get_context_state`), not its record values."""

    def _increment_stream_state(self, latest_record: dict[str, Any], *, context: Any = None) -> None:
        """Nothing: the records' own times say nothing of what has not been read yet."""

    def write_state_now(self) -> None:
        """Write a STATE message with the bookmarks as they stand."""
        self._write_state_message()


class StopsAtCheckpoints(Tap):
    """A tap that a first SIGTERM or SIGINT asks to end at its next checkpoint (`stop_requested`),
    with a final STATE written the ordinary way; a second one ends it at once, as the SDK does."""

    # A stop asked for before the tap was made (the console script's first handler sets it).
    early_stop: threading.Event | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # One flag from the start of the process: a signal before the SDK's handlers go in is kept.
        self.stop_requested = self.early_stop if self.early_stop is not None else threading.Event()
        super().__init__(*args, **kwargs)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: writing (or logging) here could interrupt a message being written.
        if self.stop_requested.is_set():
            super()._handle_termination(signum, frame)
        self.stop_requested.set()


class BatchedRecords(Stream):
    """A stream that hands whole batches of records to the tap's `SingerLineWriter`.

    The stream provides `record_json_batches()` (a generator of lists of records as JSON text, sent back
    how many of each were written) and `writes_records_as_they_are()`. Counters, timers, the SDK's test
    limit and the final STATE work as on the SDK's path; a stream that overrides `post_process` takes
    the SDK's path.
    """

    def record_json_batches(self) -> Generator[list[bytes], int, None]:
        raise NotImplementedError

    def writes_records_as_they_are(self) -> bool:
        raise NotImplementedError

    def _sync_records(self, context: Any = None, *, write_messages: bool = True) -> Generator[Any, Any, Any]:
        writer = getattr(self._tap, "message_writer", None)
        batched = write_messages and self.selected and isinstance(writer, SingerLineWriter)
        plain = type(self).post_process is Stream.post_process
        if not (batched and plain and self.writes_records_as_they_are()):
            yield from super()._sync_records(context, write_messages=write_messages)
            return
        assert isinstance(writer, SingerLineWriter)
        limit = self.ABORT_AT_RECORD_COUNT
        written = 0
        with self.get_record_counter() as counter, self.get_sync_timer():
            batches = self.record_json_batches()
            try:
                records = next(batches)
                while True:
                    if limit is not None:
                        records = records[: max(0, limit - written)]
                    writer.write_record_lines(self.name, records, self._stream_version)
                    self.state_manager.is_flushed = False
                    counter.increment(len(records))
                    written += len(records)
                    yield from records
                    if limit is not None and written >= limit:
                        break  # a dry run (--test) that has its records ends as a success, quietly
                    records = batches.send(len(records))
            except StopIteration:
                pass
            finally:
                batches.close()
        self._write_state_message()
