"""`disruptive-emulator`: run the emulator on loopback and print where it listens as one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from tap_disruptive.emulator.app import Emulator
from tap_disruptive.emulator.config import EmulatorConfig
from tap_disruptive.emulator.faults import STREAM_FAULTS


def _parser() -> argparse.ArgumentParser:
    defaults = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="disruptive-emulator",
        description="A local Disruptive Technologies REST API: auth, devices, history, stream, "
        "simulated sensors and fault injection.",
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    add("--port", type=int, default=defaults.port, help="port; 0 picks a free one (default %(default)s)")
    add(
        "--project-id",
        action="append",
        dest="project_ids",
        metavar="ID",
        help=f"a project to serve; repeat for several (default {defaults.project_ids[0]})",
    )
    add(
        "--devices",
        type=int,
        default=defaults.device_count,
        dest="device_count",
        help="simulated devices per project, cycling through every device type (default %(default)s)",
    )
    add("--seed", type=int, default=defaults.seed, help="random seed of devices and readings")
    add(
        "--rate",
        type=float,
        default=defaults.rate,
        help="simulated events per second over all devices; 0 = only what is published (default %(default)s)",
    )
    add(
        "--history-span",
        type=float,
        default=defaults.history_span,
        help="seconds of pre-generated history (default %(default)s)",
    )
    add(
        "--history-interval",
        type=float,
        default=defaults.history_interval,
        help="seconds between pre-generated events of one device (default %(default)s)",
    )
    add(
        "--backfill-ratio",
        type=float,
        default=defaults.backfill_ratio,
        help="share of temperature/humidity readings that arrive late, backfilled (default %(default)s)",
    )
    add(
        "--backfill-max-age",
        type=float,
        default=defaults.backfill_max_age,
        help="how old a backfilled reading is at most, in seconds (default %(default)s)",
    )
    add("--key-id", default=defaults.key_id, help="service account key id (demo default)")
    add("--key-secret", default=defaults.key_secret, help="service account secret (demo default)")
    add("--email", default=defaults.email, help="service account email (demo default)")
    add("--no-basic-auth", action="store_false", dest="basic_auth", help="refuse HTTP Basic auth")
    add(
        "--token-lifetime",
        type=float,
        default=defaults.token_lifetime,
        help="access token lifetime in seconds (default %(default)s)",
    )
    add(
        "--indexing-delay",
        type=float,
        default=defaults.indexing_delay,
        help="seconds before an event shows in history (default %(default)s)",
    )
    add(
        "--ping-interval",
        type=float,
        default=defaults.default_ping_interval,
        dest="default_ping_interval",
        help="stream ping interval when the client asks for none (default %(default)s)",
    )
    add(
        "--history-page-max",
        type=int,
        default=defaults.history_page_max,
        help="largest history page served, whatever the client asks (default %(default)s)",
    )
    add(
        "--chaos",
        type=float,
        default=0.0,
        dest="chaos_interval",
        metavar="SECONDS",
        help="inject a random stream fault every SECONDS on average (default off)",
    )
    add(
        "--chaos-kinds",
        default=",".join(defaults.chaos_kinds),
        help=f"comma-separated fault kinds for --chaos, of: {', '.join(sorted(STREAM_FAULTS))}",
    )
    return parser


def parse_config(argv: Sequence[str] | None = None) -> EmulatorConfig:
    parser = _parser()
    args = parser.parse_args(argv)
    kinds = tuple(kind for kind in args.chaos_kinds.split(",") if kind)
    if not set(kinds) <= STREAM_FAULTS:
        parser.error(f"unknown chaos kind: {sorted(set(kinds) - STREAM_FAULTS)[0]}")
    for name in (
        "device_count",
        "rate",
        "history_span",
        "token_lifetime",
        "indexing_delay",
        "chaos_interval",
    ):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if not 0 <= args.backfill_ratio <= 1:
        parser.error("--backfill-ratio must be between 0 and 1")
    if args.default_ping_interval <= 0:
        parser.error("--ping-interval must be positive")
    if args.history_page_max < 1:
        parser.error("--history-page-max must be at least 1")
    values = vars(args)
    values["chaos_kinds"] = kinds
    values["project_ids"] = args.project_ids or EmulatorConfig().project_ids
    return EmulatorConfig(**values)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def serve(config: EmulatorConfig) -> None:
    emulator = Emulator(config)
    emulator.populate()
    runner = web.AppRunner(emulator.make_app(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://{_url_host(config.host)}:{port}"
    emulator.token_url = f"{base}/oauth2/token"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ready = {
        "api_url": f"{base}/v2",
        "token_url": emulator.token_url,
        "emulator_url": base,
        "project_id": config.project_ids[0],
        "project_ids": config.project_ids,
        "key_id": config.key_id,
        "key_secret": config.key_secret,
        "email": config.email,
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    try:
        asyncio.run(serve(config))
    except OSError as error:
        sys.exit(f"disruptive-emulator: cannot listen on {config.host}:{config.port}: {error}")
