"""gunicorn's settings for the Procfile's web process (the command line adds bind, workers, timeout):
threaded workers (WEB_THREADS each).

Request metrics in multiprocess mode: every worker writes its counters to files in
$PORTAL_DATA_DIR/prometheus (emptied when the master starts, a dead worker's marked), and
/metrics sums them, so counters never reset when a scrape lands on another worker. The variable
must be set before a worker imports prometheus_client: here, in the master, before any fork.

The control socket (gunicorn 24+) is this instance's own, under $PORTAL_DATA_DIR, instead of one
per user in ~/.gunicorn that every gunicorn on the host would share.
"""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

from portal.lib.env import env_int

_data = Path(os.environ.get("PORTAL_DATA_DIR", "var"))
DATA_DIR = _data if _data.is_absolute() else Path(__file__).resolve().parent / _data
METRICS_DIR = DATA_DIR / "prometheus"
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(METRICS_DIR))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

control_socket = str(DATA_DIR / "gunicorn.ctl")


def on_starting(server) -> None:
    # Files of a previous run would add their counts to this one's.
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)


def post_worker_init(worker) -> None:
    # What the worker loaded at start (Django, the apps, their models) never becomes garbage: frozen,
    # it is no longer walked by each full collection that a feed's thousands of model rows set off.
    gc.freeze()


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
# Threads in each worker: a request waiting for PostgreSQL (most of an arrival's time) lets another
# run, where a sync worker idles. Each thread holds its own database connection.
worker_class = "gthread"
threads = env_int("WEB_THREADS", 4, minimum=1)
