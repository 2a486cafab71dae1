"""The amiflow worker: runs the dossier and call workflows and their activities.

Configuration from the environment (see amiflow/settings.py): AMIFLOW_TEMPORAL_ADDRESS,
AMIFLOW_NAMESPACE, AMIFLOW_DATABASE_URL, AMIFLOW_TASK_QUEUE (or AMIFLOW_DATA_DIR of a local stack);
AMIFLOW_PUBLIC_URL, the site the notices link to (`amiflow up` gives its API's address).
Several workers on the same task queue share the load. SIGTERM or SIGINT stops it gracefully:
running activities finish, then it exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta

from amiflow.bootstrap import NeedTemporal, runtime
from amiflow.logs import configure, logger
from amiflow.settings import Settings, load_settings
from amiflow.temporal import build_worker, journal_activities

# On SIGTERM, running activities get this long to finish (longer than any start-to-close timeout).
SHUTDOWN_GRACE = timedelta(seconds=30)


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when none is given)."""
    if not settings.database_url:
        raise SystemExit("amiflow worker : AMIFLOW_DATABASE_URL manquant (ou lancez `amiflow up`).")
    stop = stop or _stop_on_signals()
    async with runtime(settings, NeedTemporal.REQUIRED, pool_size=10) as rt:
        activities = journal_activities(rt.store, rt.keys, settings.mail_dir, settings.smtp_host, settings.public_url)
        worker = build_worker(rt.temporal(), settings.task_queue, activities, graceful_shutdown_timeout=SHUTDOWN_GRACE)
        log = logger(task_queue=settings.task_queue, pid=os.getpid())
        log.info("worker.started", temporal=settings.temporal_address)
        if not settings.public_url:
            log.warning("worker.no_public_url", effect="les notifications n’ont pas de lien (AMIFLOW_PUBLIC_URL)")
        async with worker:
            await stop.wait()
            log.info("worker.stopping")
    log.info("worker.stopped")


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def main() -> None:
    """Entry point: `python worker.py`."""
    settings = load_settings()
    configure(settings.log_format)
    asyncio.run(run_worker(settings))
    # The Temporal runtime can abort at interpreter exit after the work is done (seen on the development
    # machines: "Fatal Python error: PyGILState_Release", exit 134): end the process here instead.
    os._exit(0)


if __name__ == "__main__":
    main()
