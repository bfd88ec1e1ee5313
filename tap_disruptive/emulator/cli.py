"""`disruptive-emulator`: run the emulator and print where it listens as one JSON line on stdout.

Everything else goes to stderr as log lines: the start-up facts, one line per request, one per fault.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import Sequence

from aiohttp import web

from tap_disruptive.emulator import logs
from tap_disruptive.emulator.app import Emulator
from tap_disruptive.emulator.arguments import (
    OneLineParser,
    fault_kinds,
    project_id,
    real_number,
    whole_number,
)
from tap_disruptive.emulator.config import EmulatorConfig
from tap_disruptive.emulator.faults import STREAM_FAULTS
from tap_disruptive.emulator.logs import LOG
from tap_disruptive.serving.arguments import advertised_host, package_version, url_host

# Mean seconds between chaos faults when --chaos-kinds turns chaos on without --chaos.
DEFAULT_CHAOS_INTERVAL = 10.0


def _parser() -> argparse.ArgumentParser:
    defaults = EmulatorConfig()
    parser = OneLineParser(
        prog="disruptive-emulator",
        description="A local Disruptive Technologies REST API: auth, devices, history, stream, "
        "simulated sensors and fault injection. Prints one JSON line with its addresses on stdout "
        "when ready, and logs to stderr.",
    )
    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {package_version()}")
    add(
        "--host",
        default=defaults.host,
        help="address to listen on; with 0.0.0.0 or :: the printed URLs use loopback (default %(default)s)",
    )
    add(
        "--port",
        type=whole_number(0, 65535),
        default=defaults.port,
        help="port; 0 picks a free one (default %(default)s)",
    )
    add(
        "--project-id",
        action="append",
        dest="project_ids",
        metavar="ID",
        type=project_id,
        help=f"a project to serve; repeat for several (default {defaults.project_ids[0]})",
    )
    add(
        "--devices",
        type=whole_number(1),
        default=defaults.device_count,
        dest="device_count",
        help="simulated devices per project, at least 1, cycling through every device type "
        "(default %(default)s)",
    )
    add("--seed", type=int, default=defaults.seed, help="random seed of devices and readings")
    add(
        "--rate",
        type=real_number(0),
        default=defaults.rate,
        help="simulated events per second over all devices; 0 = only what is published (default %(default)s)",
    )
    add(
        "--history-span",
        type=real_number(0),
        default=defaults.history_span,
        help="seconds of pre-generated history; 0 = none (default %(default)s)",
    )
    add(
        "--history-interval",
        type=real_number(0, above=True),
        default=defaults.history_interval,
        help="seconds between pre-generated events of one device (default %(default)s)",
    )
    add(
        "--backfill-ratio",
        type=real_number(0, 1),
        default=defaults.backfill_ratio,
        help="share (0 to 1) of temperature/humidity readings that arrive late, backfilled "
        "(default %(default)s)",
    )
    add(
        "--backfill-max-age",
        type=real_number(1),
        default=defaults.backfill_max_age,
        help="how old a backfilled reading is at most, in seconds; backfilled readings are at least "
        "1 s late (default %(default)s)",
    )
    add("--key-id", default=defaults.key_id, help="service account key id (demo default)")
    add("--key-secret", default=defaults.key_secret, help="service account secret (demo default)")
    add("--email", default=defaults.email, help="service account email (demo default)")
    add(
        "--no-basic-auth",
        action="store_false",
        dest="basic_auth",
        help="refuse HTTP Basic auth on the API (bearer tokens only)",
    )
    add(
        "--token-lifetime",
        type=real_number(1),
        default=defaults.token_lifetime,
        help="access token lifetime in seconds, at least 1 (default %(default)s)",
    )
    add(
        "--indexing-delay",
        type=real_number(0),
        default=defaults.indexing_delay,
        help="seconds before an event shows in history (default %(default)s)",
    )
    add(
        "--ping-interval",
        type=real_number(0, above=True),
        default=defaults.default_ping_interval,
        dest="default_ping_interval",
        help="stream ping interval when the client asks for none (default %(default)s)",
    )
    add(
        "--history-page-max",
        type=whole_number(1),
        default=defaults.history_page_max,
        help="largest history page served, whatever the client asks (default %(default)s)",
    )
    add(
        "--chaos",
        type=real_number(0),
        default=None,
        dest="chaos_interval",
        metavar="SECONDS",
        help="inject a random stream fault every SECONDS on average; 0 = off (default off)",
    )
    add(
        "--chaos-kinds",
        type=fault_kinds,
        default=None,
        metavar="KINDS",
        help="comma-separated fault kinds for chaos, of: "
        f"{', '.join(sorted(STREAM_FAULTS))} (default {','.join(defaults.chaos_kinds)}); "
        f"naming kinds turns chaos on, every {DEFAULT_CHAOS_INTERVAL:g} s unless --chaos says otherwise",
    )
    add(
        "--connector-retention",
        type=real_number(0, above=True),
        default=defaults.connector_retention,
        metavar="SECONDS",
        help="how long a Data Connector retries an unacknowledged push before dropping it "
        "(default %(default)g, DT's 12 h)",
    )
    add(
        "--connector-timeout",
        type=real_number(0, above=True),
        default=defaults.connector_timeout,
        metavar="SECONDS",
        help="how long a push waits for the receiver's answer (default %(default)g, as DT)",
    )
    add(
        "--connector-backoff",
        type=real_number(0, above=True),
        default=defaults.connector_backoff,
        metavar="SECONDS",
        help="wait before a failed push's first retry, doubling for each further one (default %(default)g)",
    )
    add(
        "--latency",
        type=real_number(0),
        default=defaults.latency,
        metavar="SECONDS",
        help="answer every API and token request SECONDS later, as a remote DT would; a stream's opening "
        "is delayed, not its lines (default %(default)g)",
    )
    add(
        "--rate-limit",
        type=real_number(0),
        default=defaults.rate_limit,
        metavar="N",
        help="allow N API and token requests a second (a stream's opening is one), answering the rest "
        "DT's 429 with Retry-After; 0 = no limit (default %(default)g)",
    )
    add(
        "--rate-limit-burst",
        type=whole_number(1),
        default=None,
        metavar="N",
        help="how many requests may come at once under --rate-limit (default: the rate, at least 1)",
    )
    add(
        "--log-level",
        type=str.lower,
        choices=list(logs.LEVELS),
        default=defaults.log_level,
        help="what to log on stderr: info adds start-up facts and one line per request to warning's "
        "injected faults (default %(default)s)",
    )
    return parser


def parse_config(argv: Sequence[str] | None = None) -> EmulatorConfig:
    parser = _parser()
    args = parser.parse_args(argv)
    values = vars(args)
    values["project_ids"] = _distinct(parser, args.project_ids) or EmulatorConfig().project_ids
    values["chaos_interval"], values["chaos_kinds"] = _chaos(parser, args.chaos_interval, args.chaos_kinds)
    if args.rate_limit_burst is not None and args.rate_limit == 0:
        parser.error("argument --rate-limit-burst: there is no rate limit; give --rate-limit too")
    return EmulatorConfig(**values)


def _distinct(parser: argparse.ArgumentParser, project_ids: list[str] | None) -> list[str]:
    given = project_ids or []
    repeated = [project for project, times in Counter(given).items() if times > 1]
    if repeated:
        parser.error(f"argument --project-id: {repeated[0]} is given twice")
    return given


def _chaos(
    parser: argparse.ArgumentParser, interval: float | None, kinds: tuple[str, ...] | None
) -> tuple[float, tuple[str, ...]]:
    """Chaos as asked; naming kinds is asking for it, at the default pace unless --chaos sets one."""
    if kinds is None:
        return interval or 0.0, EmulatorConfig().chaos_kinds
    if interval == 0:
        parser.error("argument --chaos-kinds: chaos is off with --chaos 0; leave out one or the other")
    return interval or DEFAULT_CHAOS_INTERVAL, kinds


def _log_startup(config: EmulatorConfig, emulator: Emulator, port: int, base: str) -> None:
    LOG.info(
        "version %s listening on %s port %d; clients use %s",
        package_version(),
        config.host or "every interface",
        port,
        base,
    )
    LOG.info(
        "projects %s: %d devices each, %d events of history, %g simulated events a second",
        ", ".join(config.project_ids),
        config.device_count,
        len(emulator.store.ledger),
        config.rate,
    )
    LOG.info(
        "auth: tokens live %g s, HTTP Basic %s; history indexing delay %g s; default ping interval %g s",
        config.token_lifetime,
        "accepted" if config.basic_auth else "refused",
        config.indexing_delay,
        config.default_ping_interval,
    )
    LOG.info(
        "data connectors: a push waits %g s for an answer, retries from %g s on, for up to %g s",
        config.connector_timeout,
        config.connector_backoff,
        config.connector_retention,
    )
    LOG.info(
        "pace: %g s latency a request; %s",
        config.latency,
        f"at most {config.rate_limit:g} requests a second, {config.burst} at once"
        if config.rate_limit > 0
        else "no rate limit",
    )
    if config.chaos_interval > 0:
        kinds = ", ".join(config.chaos_kinds)
        LOG.info("chaos: a stream fault every %g s on average, of %s", config.chaos_interval, kinds)
    else:
        LOG.info("chaos: off")


async def serve(config: EmulatorConfig) -> None:
    emulator = Emulator(config)
    emulator.populate()
    runner = web.AppRunner(emulator.make_app(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://{url_host(advertised_host(config.host))}:{port}"
    emulator.token_url = f"{base}/oauth2/token"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    _log_startup(config, emulator, port, base)
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
        LOG.info("stopping")
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    logs.configure(config.log_level)
    try:
        asyncio.run(serve(config))
    except OSError as error:
        LOG.error("cannot listen on %s port %s: %s", config.host, config.port, error)
        sys.exit(1)
