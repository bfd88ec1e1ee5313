"""`disruptive-receiver`: take DT's Data Connector pushes and print where it listens as one JSON line.

Everything else goes to stderr as log lines. Signature secrets come from `--secret` (repeatable) or
else `DT_CONNECTOR_SECRET` (comma-separated); the environment keeps them out of `ps`. DT pushes over
HTTPS only, so in production a TLS-terminating proxy forwards to this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import warnings
from collections.abc import Sequence

from aiohttp import web
from jwt.warnings import InsecureKeyLengthWarning

from tap_disruptive.receiver import logs
from tap_disruptive.receiver.app import RESERVED_PATHS, Receiver
from tap_disruptive.receiver.config import (
    DEFAULT_RETENTION_HOURS,
    DEFAULT_SPOOL,
    DT_REDELIVERY_HOURS,
    ConnectorSecrets,
    ReceiverConfig,
)
from tap_disruptive.receiver.logs import LOG
from tap_disruptive.receiver.retention import prune_periodically
from tap_disruptive.receiver.signature import SignatureVerifier
from tap_disruptive.serving.arguments import (
    OneLineParser,
    advertised_host,
    package_version,
    real_number,
    url_host,
    whole_number,
)
from tap_disruptive.spool import (
    SpoolError,
    is_postgres,
    open_spool,
    shown_target,
    spool_password,
)
from tap_disruptive.spool.offload import OffloadedSpool

SECRET_ENV = "DT_CONNECTOR_SECRET"  # noqa: S105 - the variable's name, not its value
# RFC 7518 asks HS256 keys to be at least as long as the hash: 32 bytes.
STRONG_SECRET_BYTES = 32


def _path(text: str) -> str:
    if not text.startswith("/") or text in RESERVED_PATHS:
        raise argparse.ArgumentTypeError(f"must start with / and not be {' or '.join(RESERVED_PATHS)}")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="disruptive-receiver",
        description="Receive Disruptive Technologies Data Connector HTTP pushes: verify X-Dt-Signature, "
        "store each event once, durably, before answering 200. Prints one JSON line with its URL on "
        "stdout when ready, and logs to stderr.",
    )
    add = parser.add_argument
    add("--version", action="version", version=f"%(prog)s {package_version()}")
    add("--host", default="127.0.0.1", help="address to listen on (default %(default)s)")
    add("--port", type=whole_number(0, 65535), default=8080, help="port; 0 picks a free one")
    add("--path", type=_path, default="/", help="the path DT posts to (default %(default)s)")
    add(
        "--secret",
        action="append",
        dest="secrets",
        metavar="SECRET",
        help=f"a Data Connector signature secret; repeat to accept several while rotating. Default: "
        f"${SECRET_ENV}, comma-separated. A command line is visible to other local users.",
    )
    add(
        "--spool",
        default=DEFAULT_SPOOL,
        help="a SQLite file, or a postgresql:// URL for several receivers on one database "
        "(default %(default)s)",
    )
    add(
        "--retention-hours",
        type=real_number(0, above=True),
        default=DEFAULT_RETENTION_HOURS,
        help=f"delete events received longer ago than this; above {DT_REDELIVERY_HOURS:g} (DT's "
        "re-delivery window) so a late re-send is still known as a duplicate (default %(default)s)",
    )
    add(
        "--prune-every",
        type=real_number(0, above=True),
        default=300.0,
        metavar="SECONDS",
        help="how often to delete old events (default %(default)s)",
    )
    add(
        "--log-level",
        type=str.lower,
        choices=list(logs.LEVELS),
        default="info",
        help="what to log on stderr: info adds start-up facts and one line per request (default %(default)s)",
    )
    return parser


def _secrets(parser: argparse.ArgumentParser, given: list[str] | None) -> ConnectorSecrets:
    candidates = given if given else os.environ.get(SECRET_ENV, "").split(",")
    secrets = [secret.strip() for secret in candidates]
    if given and not all(secrets):
        parser.error("argument --secret: must not be empty")
    try:
        return ConnectorSecrets(secret for secret in secrets if secret)
    except ValueError:
        parser.error(f"give the Data Connector signature secret with --secret or ${SECRET_ENV}")


def parse_config(argv: Sequence[str] | None = None) -> ReceiverConfig:
    parser = _parser()
    args = parser.parse_args(argv)
    return ReceiverConfig(
        secrets=_secrets(parser, args.secrets),
        host=args.host,
        port=int(args.port),
        path=args.path,
        spool=args.spool,
        retention_hours=args.retention_hours,
        prune_every=args.prune_every,
        log_level=args.log_level,
    )


def _log_startup(config: ReceiverConfig, port: int, url: str) -> None:
    LOG.info("version %s listening on %s port %d; DT pushes to %s", package_version(), config.host, port, url)
    LOG.info(
        "spool %s (%s); events kept %g hours, pruned every %g s",
        shown_target(config.spool),
        "PostgreSQL" if is_postgres(config.spool) else "SQLite, WAL, synchronous=FULL",
        config.retention_hours,
        config.prune_every,
    )
    LOG.info("%d signature secret(s) accepted", len(config.secrets))
    if any(len(secret.encode()) < STRONG_SECRET_BYTES for secret in config.secrets):
        LOG.warning("a signature secret is shorter than %d bytes: easier to guess", STRONG_SECRET_BYTES)
    if config.retention_hours < DT_REDELIVERY_HOURS:
        LOG.warning(
            "events are kept %g hours, less than DT's %g hours of re-delivery: a late re-send of a "
            "pruned event is stored again",
            config.retention_hours,
            DT_REDELIVERY_HOURS,
        )


async def serve(config: ReceiverConfig, spool: OffloadedSpool) -> None:
    receiver = Receiver(config, spool, SignatureVerifier(config.secrets))
    runner = web.AppRunner(receiver.make_app(), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    pruning: asyncio.Task[None] | None = None
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://{url_host(advertised_host(config.host))}:{port}"
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        pruning = asyncio.create_task(
            prune_periodically(spool, config.retention_hours * 3600, config.prune_every)
        )
        _log_startup(config, port, f"{base}{config.path}")
        ready = {
            "url": f"{base}{config.path}",
            "health_url": f"{base}/healthz",
            "metrics_url": f"{base}/metrics",
            "spool": shown_target(config.spool),
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()
        LOG.info("stopping")
    finally:
        if pruning is not None:
            pruning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruning
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_config(argv)
    logs.configure(config.log_level, [*config.secrets, spool_password(config.spool) or ""])
    # Short secrets are DT's users' choice; this says so once at start-up rather than on every push.
    warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
    try:
        spool = OffloadedSpool(open_spool(config.spool), config.answer_within)
    except SpoolError as error:
        LOG.error("%s", error)
        sys.exit(1)
    try:
        asyncio.run(serve(config, spool))
    except OSError as error:
        LOG.error("cannot listen on %s port %s: %s", config.host, config.port, error)
        sys.exit(1)
    finally:
        spool.close()
