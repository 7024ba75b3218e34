"""Idle memory of the app as the Procfile runs it: RSS and PSS of the gunicorn master and worker.

Starts the fake upstream (harness/timed_upstream.py) and the Procfile's web command (gunicorn, one
gevent worker) on a fresh SQLite database after ``flask db upgrade`` (harness/processes.py),
warms the worker up as stream_bench.py does (three visitors: the new-chat page, a
conversation created, then three more messages each, the visitors at once, every reply's
event stream read to its end), then views pages (new chat, a conversation, search, health), waits until the
worker is quiet and prints each process's RSS and /proc/PID/smaps_rollup breakdown, just
after starting and after the warm-up.

    .venv/bin/python bench/idle_memory.py              # one run, about 10 s
    .venv/bin/python bench/idle_memory.py --runs 3     # several fresh starts, each printed
    .venv/bin/python bench/idle_memory.py --no-pages   # chat turns only, no page views

RSS counts the pages the worker shares with the master (it is forked from it) in both;
PSS splits them. bench/stream_bench.py's "idle RSS" is the same RSS sum after its warm-up.
Not a test: it asserts nothing.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _client as client  # noqa: E402
from harness import processes, procfs  # noqa: E402

API_KEY = "bench-key"
ROLLUP_FIELDS = ("Rss", "Pss", "Shared_Clean", "Private_Clean", "Private_Dirty", "Anonymous")


def rollup_kb(pid: int) -> dict[str, int]:
    """The smaps_rollup fields of ROLLUP_FIELDS, in KB."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ROLLUP_FIELDS:
                values[name] = int(rest.split()[0])
    return values


def warm_up(port: int, pages: bool) -> None:
    """A few visitors' chat turns (as stream_bench.py's warm-up), then page views."""
    users = [client.create_user(port, f"memory {i}", 60.0) for i in range(3)]  # GET /, POST /c, send

    def visitor(i: int) -> None:
        for turn in range(3):
            result = client.relay_round(port, users[i], f"memory {i}-{turn}", 0, 60.0, client.Counter())
            if not result.ok:
                raise RuntimeError(f"warm-up chat turn: {result.error}")

    gevent.joinall([gevent.spawn(visitor, i) for i in range(len(users))], raise_error=True)
    if pages:
        cookie = {"Cookie": users[0]["cookie"]}
        for path in ("/", f"/c/{users[0]['public_id']}", "/search?q=memory", "/healthz"):
            client.simple_request(port, "GET", path, cookie)


def wait_quiet(pid: int, limit: float = 30.0) -> None:
    """Until the process uses under 1% CPU over half a second."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = procfs.cpu_seconds(pid)
        time.sleep(0.5)
        if procfs.cpu_seconds(pid) - before < 0.005:
            return


def one_run(workdir: Path, pages: bool) -> None:
    upstream = app = None
    try:
        # Replies paced as stream_bench.py --quick paces them: 30 tokens 20 ms apart.
        upstream, base_url = processes.start_upstream(30, 0.02, 0.1, API_KEY, False,
                                              workdir / "upstream.log")
        port = processes.free_port()
        env = {"DATABASE_URL": f"sqlite:///{workdir}/memory.db", "REGOLO_BASE_URL": base_url,
               "REGOLO_API_KEY": API_KEY, "SECRET_KEY": "bench", "ACCESS_LOG": "0"}
        app = processes.start_app(env, port, workdir / "app.log")
        master, worker = app.pid, procfs.children(app.pid)[0]
        started = {"master": rollup_kb(master), "worker": rollup_kb(worker)}
        warm_up(port, pages)
        wait_quiet(worker)
        warm = {"master": rollup_kb(master), "worker": rollup_kb(worker)}
        print(f"{'MB':<18}" + "".join(f"{name:>14}" for name in ROLLUP_FIELDS))
        for label, figures in (("started", started), ("after warm-up", warm)):
            for role in ("master", "worker"):
                print(f"{label + ' ' + role:<22}" + "".join(
                    f"{figures[role][name] / 1024:>14.1f}" for name in ROLLUP_FIELDS))
        total_rss = sum(warm[r]["Rss"] for r in warm) / 1024
        total_pss = sum(warm[r]["Pss"] for r in warm) / 1024
        threads = len(os.listdir(f"/proc/{worker}/task"))
        print(f"worker threads: {threads}")
        print(f"idle after warm-up: RSS master {warm['master']['Rss'] / 1024:.1f} MB + worker "
              f"{warm['worker']['Rss'] / 1024:.1f} MB = {total_rss:.1f} MB; "
              f"PSS {total_pss:.1f} MB", flush=True)
    finally:
        processes.stop_process(app)
        processes.stop_process(upstream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="fresh starts to measure")
    parser.add_argument("--no-pages", action="store_true",
                        help="warm up with chat turns only, as stream_bench.py does")
    args = parser.parse_args()
    for _ in range(args.runs):
        workdir = Path(tempfile.mkdtemp(prefix="idle-memory-"))
        try:
            one_run(workdir, not args.no_pages)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
