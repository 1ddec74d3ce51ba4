"""Benchmark of the memory of `make run` (not a test): the summed RSS and PSS of its processes beside a floor measured in the same run.

Does what `make run` does, with its embedded defaults (SQLite, django-q2's ORM broker, the
`local` queue) in a temporary PORTAL_DATA_DIR: `migrate`, `create_demo_admin`, `load_demo`,
`setup_schedules`, `collectstatic`, then `honcho start -f Procfile` with WEB_BIND on a free port
of 127.0.0.1. Once `/healthz` answers 200 it reads the RSS (/proc/PID/status) and PSS
(/proc/PID/smaps_rollup) of every process of honcho's tree, per Procfile name and role, at once
and again after `--seconds`; then SIGTERM to honcho, and no process of the tree may be left.

The floor: a bare Django + django-q2 process (`django.setup()` with only contenttypes, auth and
django_q installed, django-q2's cluster module imported) times the number of Python processes the
portal ran. Target (issue 16): the whole tree under 600 MB RSS.

    .venv/bin/python bench/memory.py                    # full size: samples at start and after 120 s
    .venv/bin/python bench/memory.py --size small       # a smoke run: figures produced, not their values
    WEB_WORKERS=2 Q_WORKERS=2 .venv/bin/python bench/memory.py   # the sizes a deployment sets

DATABASE_URL, REDIS_URL, Q_BROKER and CONTROL_QUEUE_BACKEND are left out of the processes'
environment (the embedded defaults); the size settings pass, and WEB_WORKERS and Q_WORKERS default
to 1 as in `make run`.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = 600
SIZES = {"full": 120, "small": 3}
SETUP = (["migrate", "--noinput"], ["create_demo_admin"], ["load_demo"], ["setup_schedules"], ["collectstatic", "--noinput", "--verbosity", "0"])
# What the Makefile's run target exports unless the environment has it.
MAKE_RUN_DEFAULTS = {"DEBUG": "1", "WEB_WORKERS": "1", "Q_WORKERS": "1"}
NOT_MAKE_RUN = ("DATABASE_URL", "REDIS_URL", "Q_BROKER", "CONTROL_QUEUE_BACKEND", "CONTROL_QUEUE_URL", "DJANGO_SETTINGS_MODULE")
FLOOR = (
    "import django, sys, time; from django.conf import settings; "
    "settings.configure(INSTALLED_APPS=['django.contrib.contenttypes', 'django.contrib.auth', 'django_q'], "
    "DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}, "
    "Q_CLUSTER={'orm': 'default', 'timeout': 60, 'retry': 120}); "
    "django.setup(); import django_q.cluster; print('ready', flush=True); sys.stdin.read()"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--seconds", type=float, help="between the two samples (full: 120, small: 3)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(data_dir: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_MAKE_RUN}
    for name, value in MAKE_RUN_DEFAULTS.items():
        env.setdefault(name, value)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PORTAL_DATA_DIR=str(data_dir),
        WEB_BIND=f"127.0.0.1:{port}",
    )
    return env


# --- /proc -------------------------------------------------------------------------------------


def read_kb(path: str, field: str) -> int:
    """A ``field:  N kB`` line of a /proc file, in kB (0 when the process is gone)."""
    try:
        with open(path) as source:
            for line in source:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree[parent].append(int(entry))
    return tree


def command_line(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as source:
            return [part.decode(errors="replace") for part in source.read().split(b"\0") if part]
    except OSError:
        return []


def role(argv: list[str]) -> str:
    """What a process of the tree is, in a few words."""
    if any("shielded_exit_code" in word for word in argv):  # run_worker once it became the cluster's small relay
        return "shield"
    words = [Path(word).name for word in argv]
    for known in ("honcho", "stepguard.py", "gunicorn", "run_worker", "qcluster", "publish_outbox", "run_heartbeat", "run_dispatcher"):
        if known in words:
            return known.removesuffix(".py")
    return " ".join(words[:2])[:40] or "?"


# The processes that run Django (the floor counts them); honcho, the shells, gunicorn's master and the guards do not.
DJANGO = {"gunicorn child", "run_worker", "qcluster", "qcluster child", "publish_outbox", "run_heartbeat", "run_dispatcher"}
# Not the portal's own: the process manager, its shells, the guard between run_worker and the cluster.
HELPERS = {"honcho", "sh -c", "stepguard"}
PROCFILE = {"gunicorn": "web", "run_worker": "worker", "shield": "worker", "publish_outbox": "publisher", "run_heartbeat": "clock", "run_dispatcher": "dispatcher"}


def tree_of(root: int) -> list[tuple[str, int, str]]:
    """(Procfile name, pid, role) of ``root`` and every process below it; a fork of its parent is a "child".

    The Procfile name of honcho's helper process and its shell is the one of the command below them.
    """
    tree = children()
    found = [("honcho", root, "honcho")]
    for top in tree.get(root, []):
        subtree, stack = [], [(top, None)]
        while stack:
            pid, parent_role = stack.pop()
            what = role(command_line(pid))
            subtree.append((pid, f"{what} child" if what == parent_role else what))
            stack.extend((child, what) for child in tree.get(pid, []))
        name = next((PROCFILE[what] for _, what in subtree if what in PROCFILE), "?")
        found += [(name, pid, what) for pid, what in subtree]
    return found


def sample(root: int) -> list[tuple[str, str, int, int]]:
    """(Procfile name, role, RSS kB, PSS kB) of every live process of the tree."""
    rows = []
    for name, pid, what in tree_of(root):
        rss = read_kb(f"/proc/{pid}/status", "VmRSS")
        if rss:
            rows.append((name, what, rss, read_kb(f"/proc/{pid}/smaps_rollup", "Pss")))
    return rows


# --- the portal --------------------------------------------------------------------------------


def settled(root: int, seconds: float = 3, timeout: float = 90) -> None:
    """Wait until the Django processes of the tree stay the same for ``seconds`` (the forks are done; steps come and go)."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        now = sorted(pid for _, pid, what in tree_of(root) if what in DJANGO)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return
        time.sleep(0.5)


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def floor_rss_kb() -> int:
    process = subprocess.Popen([sys.executable, "-c", FLOOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        return read_kb(f"/proc/{process.pid}/status", "VmRSS")
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def stop(honcho: subprocess.Popen, pids: set[int]) -> list[int]:
    """SIGTERM to honcho, wait; the pids of the tree still alive after it ended (then killed)."""
    honcho.send_signal(signal.SIGTERM)
    try:
        honcho.wait(timeout=60)
    except subprocess.TimeoutExpired:
        honcho.kill()
        honcho.wait()
    deadline = time.monotonic() + 15
    while (left := [pid for pid in pids if read_kb(f"/proc/{pid}/status", "VmRSS")]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def table(title: str, rows: list[tuple[str, str, int, int]]) -> tuple[int, int]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for name, what, rss, pss in rows:
        group = groups[(name, what)]
        group[0] += 1
        group[1] += rss
        group[2] += pss
    print(f"\n  {title}")
    print(f"    {'process':<11} {'role':<22} {'count':>5} {'RSS MB':>8} {'PSS MB':>8}")
    for (name, what), (count, rss, pss) in sorted(groups.items()):
        print(f"    {name:<11} {what:<22} {count:>5} {rss / 1024:>8.1f} {pss / 1024:>8.1f}")
    lines: dict[str, int] = defaultdict(int)
    for name, _, rss, _ in rows:
        lines[name] += rss
    print("    per Procfile line (RSS): " + ", ".join(f"{name} {rss / 1024:.0f} MB" for name, rss in sorted(lines.items())))
    rss, pss = sum(row[2] for row in rows), sum(row[3] for row in rows)
    own = [row for row in rows if row[1] not in HELPERS]
    print(f"    {'total':<11} {'':<22} {len(rows):>5} {rss / 1024:>8.1f} {pss / 1024:>8.1f}")
    print(f"    {'the portal':<11} {'(no honcho, sh, guard)':<22} {len(own):>5} {sum(row[2] for row in own) / 1024:>8.1f}"
          f" {sum(row[3] for row in own) / 1024:>8.1f}")
    return rss, pss


def main() -> None:
    args = parse_args()
    seconds = args.seconds if args.seconds is not None else SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="portal-memory-") as folder:
        data_dir, port = Path(folder), free_port()
        env = environment(data_dir, port)
        for command in SETUP:
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"manage.py {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        log = (data_dir / "honcho.log").open("w")
        honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "start", "-f", "Procfile"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        pids: set[int] = set()
        try:
            deadline = time.monotonic() + 180
            while not healthy(port):
                if honcho.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the portal did not become healthy on port {port}:\n{(data_dir / 'honcho.log').read_text()[-3000:]}")
                time.sleep(0.5)
            settled(honcho.pid)
            first = sample(honcho.pid)
            pids |= {pid for _, pid, _ in tree_of(honcho.pid)}
            time.sleep(seconds)
            later = sample(honcho.pid)
            pids |= {pid for _, pid, _ in tree_of(honcho.pid)}
        finally:
            left = stop(honcho, pids | {honcho.pid})
            log.close()
        floor = floor_rss_kb()

    python = sum(1 for _, what, _, _ in later if what in DJANGO)
    print(f"\nmemory of `make run` ({args.size}): embedded defaults, {os.cpu_count()} CPUs, WEB_WORKERS={env['WEB_WORKERS']},"
          f" WEB_THREADS={env.get('WEB_THREADS', 'default')}, Q_WORKERS={env['Q_WORKERS']}")
    start_rss, start_pss = table("once /healthz answers 200", first)
    rss, pss = table(f"after {seconds:g} s", later)
    print(f"\n  floor: a bare Django + django-q2 process {floor / 1024:.1f} MB RSS x {python} Django processes = {floor * python / 1024:.1f} MB")
    print(f"  {'':<34} {'RSS MB':>8} {'PSS MB':>8} {'floor MB':>9} {'ratio':>6} {'target MB':>9}")
    for label, (r, p) in (("at start", (start_rss, start_pss)), (f"after {seconds:g} s", (rss, pss))):
        print(f"  {label:<34} {r / 1024:>8,.0f} {p / 1024:>8,.0f} {floor * python / 1024:>9,.0f} {r / (floor * python):>6.2f} {TARGET_MB:>9}")
    print(f"  ratio to the target (600 MB RSS) after {seconds:g} s: {rss / 1024 / TARGET_MB:.2f}")
    if left:
        raise SystemExit(f"processes left behind after honcho stopped (killed): {sorted(left)}")


if __name__ == "__main__":
    main()
