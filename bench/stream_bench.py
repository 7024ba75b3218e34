"""Streaming relay benchmark: time to first token, concurrent streams, CPU and memory per stream.

Starts a fake upstream (harness/timed_upstream.py: the tests' fake upstream, paced, with
send timestamps) and the app exactly as the Procfile does (gunicorn, gevent workers),
then, at each concurrency level K, runs the same client against

  * direct: the upstream's own /chat/completions event stream (the baseline), and
  * relay:  the app, as htmx does it: POST /c/<id>/messages, then GET the reply's stream,

with K simulated people, each in their own conversation, sending messages back to back.
Figures are differences against the direct baseline measured in the same run.

    .venv/bin/python bench/stream_bench.py            # full run, about 5 minutes
    .venv/bin/python bench/stream_bench.py --quick    # about 1 minute (CI)
    .venv/bin/python bench/stream_bench.py --quick --workers 2              # WEB_CONCURRENCY=2
    .venv/bin/python bench/stream_bench.py --quick --workers 2 --postgres   # 2 instances

With --workers N (gunicorn's WEB_CONCURRENCY) or --postgres (two instances of the web
process on one PostgreSQL database, messages sent to one and followed and stopped on the
other), a one-worker SQLite run comes first, and part 4 compares delivery (update
spacing, first token, Stop, CPU per reply) against it.

Everything (client, fake upstream, app) shares this machine's cores; the output says how
much CPU each used, and how much other processes used, so a saturated client or upstream
or a busy machine is visible. Not a test: it asserts nothing. See bench/README.md.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
from collections import Counter as Tally  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _client as client  # noqa: E402
from harness import processes, procfs  # noqa: E402
import _profile  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "bench-key"
MODEL = "Llama-3.3-70B-Instruct"
TTFT_P50_TARGET_MS = 10.0
TTFT_P99_TARGET_MS = 50.0
ADDED_P99_TARGET_MS = 100.0
# A level counts as served only if this share of its K streams were open at once: a worker
# that falls behind queues the sends, and fewer streams overlap than were asked for.
HELD_SHARE = 0.9
STREAMS_TARGET = 1000
IDLE_RSS_TARGET_MB = 100.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--tokens", type=int, default=60, help="tokens per reply")
    p.add_argument("--token-delay", type=float, default=0.02, help="upstream seconds per token")
    p.add_argument("--ttft", type=float, default=0.1, help="upstream time to first token (s)")
    p.add_argument("--ttft-levels", default="1,100",
                   help="concurrency levels always measured (part 1)")
    p.add_argument("--steps", default="25,50,100,250,500,1000,1500",
                   help="concurrency steps of part 2; stops after the first failing one")
    p.add_argument("--refine", type=int, default=2,
                   help="bisection steps between the last passing and first failing step")
    p.add_argument("--samples-at-1", type=int, default=20,
                   help="sequential replies measured at concurrency 1")
    p.add_argument("--rounds", type=int, default=3, help="replies per person at K > 1")
    p.add_argument("--think", type=float, default=0.1,
                   help="max random pause between a reply's end and the next message (s)")
    p.add_argument("--ramp", type=float, default=None,
                   help="people start uniformly over this many seconds (None: one reply)")
    p.add_argument("--timeout", type=float, default=30.0, help="socket timeout (s)")
    p.add_argument("--run-timeout", type=float, default=120.0,
                   help="hard limit for one level and mode (s)")
    p.add_argument("--setup-concurrency", type=int, default=50)
    p.add_argument("--others-max", type=float, default=40.0,
                   help="before each run, wait until other processes use less than this "
                        "%% of a core (this machine may be shared)")
    p.add_argument("--others-wait", type=float, default=120.0,
                   help="longest wait for that (s); the run goes ahead afterwards, flagged")
    p.add_argument("--keep-going", action="store_true",
                   help="run every step even after one fails")
    p.add_argument("--upstream-threads", action="store_true",
                   help="run the fake upstream with OS threads (as the tests run it)")
    p.add_argument("--upstream-nagle", action="store_true",
                   help="the fake upstream leaves Nagle's algorithm on, as a few servers do")
    p.add_argument("--app-cpus", default=None,
                   help="pin gunicorn to these CPUs, e.g. 2,3 (None: not pinned)")
    p.add_argument("--harness-cpus", default=None,
                   help="pin this client and the fake upstream to these CPUs, e.g. 0,1; on a "
                        "machine with spare cores this keeps the harness off the app's")
    p.add_argument("--profile-dir", default=None,
                   help="record py-spy (pip install py-spy) on the worker during relay runs "
                        "with K > 1 and print a summary")
    p.add_argument("--workers", type=int, default=1,
                   help="gunicorn workers per instance (WEB_CONCURRENCY)")
    p.add_argument("--postgres", nargs="?", const="start", default=None, metavar="URL",
                   help="two instances of the web process on one PostgreSQL database, each "
                        "with --workers workers; messages are sent to the first and their "
                        "streams followed (and stopped) on the second. Without URL, a "
                        "throwaway server from scripts/postgres")
    p.add_argument("--stops", type=int, default=10,
                   help="replies stopped after their first token, to time Stop")
    p.add_argument("--no-baseline", action="store_true",
                   help="with --workers > 1 or --postgres, skip the one-worker SQLite run "
                        "whose figures the ratios divide by")
    p.add_argument("--full-baseline", action="store_true",
                   help="run the baseline at every level and step too, for capacity ratios")
    p.add_argument("--json", default=None, help="also write every figure here")
    p.add_argument("--quick", action="store_true",
                   help="small run (about 2 minutes, or twice that with a baseline): 30 "
                        "tokens, levels 1 and 25, steps 10,25,50, 5 stops, no waiting for "
                        "a quiet machine")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.quick:
        args.tokens = min(args.tokens, 30)
        args.ttft_levels, args.steps = "1,25", "10,25,50"
        args.samples_at_1, args.rounds, args.refine, args.stops = 8, 2, 0, 5
        args.others_wait = 0.0  # flag the levels a busy machine slowed, do not wait
    for name in ("app_cpus", "harness_cpus"):
        value = getattr(args, name)
        setattr(args, name, {int(x) for x in value.split(",") if x} if value else None)
    # Level 1 is always measured: part 4's delivery figures come from it.
    args.ttft_levels = sorted({1} | {int(x) for x in args.ttft_levels.split(",") if x})
    args.steps = sorted({int(x) for x in args.steps.split(",") if x})
    return args


class Bench:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.reply_seconds = args.ttft + (args.tokens - 1) * args.token_delay
        self.users: list[dict] = []
        self.run_seq = 0
        self.upstream = self.app = None
        self.workdir = Path(tempfile.mkdtemp(prefix="stream-bench-"))

    # ------------------------------------------------------------------ processes

    def start(self):
        a = self.args
        if a.harness_cpus:
            os.sched_setaffinity(0, a.harness_cpus)
        self.upstream, self.base_url = processes.start_upstream(
            a.tokens, a.token_delay, a.ttft, API_KEY, a.upstream_threads,
            self.workdir / "upstream.log", cpus=a.harness_cpus, nagle=a.upstream_nagle)
        self.up_port = int(self.base_url.split(":")[2].split("/")[0])
        database = a.database_url or f"sqlite:///{self.workdir}/bench.db"
        env = {"DATABASE_URL": database, "WEB_CONCURRENCY": str(a.workers),
               "REGOLO_BASE_URL": self.base_url, "REGOLO_API_KEY": API_KEY,
               "SECRET_KEY": "bench", "ACCESS_LOG": "0"}
        self.apps, self.ports = [], []
        for index in range(2 if a.database_url else 1):  # the second shares the database
            port = processes.free_port()
            self.apps.append(processes.start_app(env, port, self.workdir / f"app{index}.log",
                                                 cpus=a.app_cpus, migrate=index == 0))
            self.ports.append(port)
        self.app_port, self.follow_port = self.ports[0], self.ports[-1]
        self.masters = [app.pid for app in self.apps]
        self.workers = [kid for m in self.masters for kid in sorted(procfs.children(m))]

    def stop(self):
        for app in getattr(self, "apps", []):
            processes.stop_process(app)
        processes.stop_process(self.upstream)

    def check_worker(self):
        for index, app in enumerate(self.apps):
            if app.poll() is not None:
                log = self.workdir / f"app{index}.log"
                tail = log.read_text(errors="replace").splitlines()[-5:]
                raise RuntimeError("gunicorn stopped (not by this benchmark):\n  "
                                   + "\n  ".join(tail))
        kids = [kid for m in self.masters for kid in sorted(procfs.children(m))]
        if kids != self.workers:
            raise RuntimeError(f"gunicorn workers changed: {self.workers} -> {kids} "
                               f"(see the app logs in {self.workdir})")

    def cpu_of(self, pids) -> float:
        return sum(procfs.cpu_seconds(pid) for pid in pids)

    def ours(self) -> float:
        self.check_worker()
        t = os.times()
        return (self.cpu_of(self.workers) + self.cpu_of(self.masters)
                + procfs.cpu_seconds(self.upstream.pid) + t.user + t.system)

    def wait_quiet(self, limit=60.0):
        """Until the workers and the upstream use under 3% CPU over half a second."""
        watched = [*self.workers, self.upstream.pid]
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.cpu_of(watched)
            gevent.sleep(0.5)
            if self.cpu_of(watched) - before < 0.015:
                return

    def background_load(self, seconds=2.0) -> float:
        """CPU used by processes other than ours, in % of one core, while we are idle."""
        m0, o0 = procfs.machine_busy_seconds(), self.ours()
        gevent.sleep(seconds)
        return 100 * ((procfs.machine_busy_seconds() - m0) - (self.ours() - o0)) / seconds

    def wait_for_machine(self) -> float:
        """Wait (bounded) until other processes leave the cores alone; their last load."""
        deadline = time.monotonic() + self.args.others_wait
        load = self.background_load(1.0)
        while load > self.args.others_max and time.monotonic() < deadline:
            load = self.background_load(1.0)
        return load

    # ------------------------------------------------------------------ setup

    def ensure_users(self, count: int):
        missing = count - len(self.users)
        if missing <= 0:
            return
        t0 = time.monotonic()
        pool = gevent.pool.Pool(self.args.setup_concurrency)
        made = pool.map(lambda i: client.create_user(self.app_port, f"u{i}", 60.0),
                        range(len(self.users), count))
        self.users.extend(made)
        print(f"  setup: {missing} conversations in {time.monotonic() - t0:.1f} s", flush=True)

    # ------------------------------------------------------------------ one run

    def run(self, mode: str, level: int, profile: bool = True) -> dict:
        a = self.args
        self.run_seq += 1
        rounds = a.samples_at_1 if level == 1 else a.rounds
        ramp = 0.0 if level == 1 else (a.ramp if a.ramp is not None else self.reply_seconds)
        streams = client.Counter()
        results: list[client.StreamResult] = []
        rng = random.Random(self.rng.random())
        starts = [rng.uniform(0, ramp) for _ in range(level)]
        thinks = [[rng.uniform(0, a.think) for _ in range(rounds)] for _ in range(level)]

        def person(i: int):
            gevent.sleep(starts[i])
            for r in range(rounds):
                tag = f"bench {mode[0]}{self.run_seq}-{i}-{r}"
                if mode == "relay":
                    res = client.relay_round(self.app_port, self.users[i], tag, a.tokens,
                                             a.timeout, streams, follow_port=self.follow_port)
                else:
                    res = client.direct_round(self.up_port, "/v1/chat/completions", API_KEY,
                                         MODEL, tag, a.tokens, a.timeout, streams)
                results.append(res)
                if not res.ok:
                    return
                gevent.sleep(thinks[i][r])

        samples = {"rss": [], "lag": [], "streams": []}
        running = True

        def monitor():
            while running:
                t = time.monotonic()
                gevent.sleep(0.05)
                samples["lag"].append((time.monotonic() - t - 0.05) * 1000)
                samples["rss"].append(sum(procfs.rss_kb(w) for w in self.workers))
                samples["streams"].append(streams.now)

        profiler = self.start_profiler(mode, level) if profile else None
        cpu0 = self.cpu_now()
        t0 = time.monotonic()
        mon = gevent.spawn(monitor)
        people = [gevent.spawn(person, i) for i in range(level)]
        gevent.joinall(people, timeout=a.run_timeout)
        unfinished = [g for g in people if not g.dead]
        gevent.killall(unfinished, block=True, timeout=10)
        wall = time.monotonic() - t0
        cpu1 = self.cpu_now()
        running = False
        mon.join()
        self.stop_profiler(profiler, level)
        self.check_worker()
        sends = self.fetch_sends()
        return self.summarise(mode, level, rounds, results, len(unfinished), sends, wall,
                              cpu0, cpu1, samples, streams.peak)

    def cpu_now(self) -> dict:
        t = os.times()
        wait = sum(procfs.schedstat(w)[1] for w in self.workers)
        return {"worker": self.cpu_of(self.workers), "master": self.cpu_of(self.masters),
                "upstream": procfs.cpu_seconds(self.upstream.pid), "client": t.user + t.system,
                "machine": procfs.machine_busy_seconds(), "worker_wait": wait}

    def fetch_sends(self) -> dict:
        status, _, body = client.simple_request(self.up_port, "GET", "/bench/sends", timeout=60)
        return json.loads(body) if status == 200 else {}

    def start_profiler(self, mode, level):
        if not self.args.profile_dir or mode != "relay" or level <= 1:
            return None
        exe = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if not exe:
            print(" (py-spy not installed: no profile)", end="")
            return None
        out = Path(self.args.profile_dir) / f"worker-{level}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen([exe, "record", "--pid", str(self.workers[0]), "--rate", "200",
                                 "--format", "raw", "--nonblocking", "-o", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        proc.out = out
        gevent.sleep(0.5)
        return proc

    def stop_profiler(self, proc, level):
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, 2)  # SIGINT: py-spy writes its output and exits
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                processes.stop_process(proc)
        if proc.out.exists():
            print()
            print(_profile.summarise(str(proc.out), top=8))

    # ------------------------------------------------------------------ figures

    def summarise(self, mode, level, rounds, results, unfinished, sends, wall, cpu0, cpu1,
                  samples, peak_streams) -> dict:
        a = self.args
        ok = [r for r in results if r.ok]
        errors = Tally(r.error.split(":")[0] for r in results if not r.ok)
        if unfinished:
            errors["unfinished at run timeout"] += unfinished
        ttft, to_upstream, lateness, added, gaps, slip, first_lateness = [], [], [], [], [], [], []
        sent, opened, upstream_ttft, spacing = [], [], [], []
        unmatched = 0
        for r in ok:
            ttft.append((r.arrivals[0] - r.t_start) * 1000)
            if r.t_sent is not None:
                sent.append((r.t_sent - r.t_start) * 1000)
            opened.append((r.t_stream_open - r.t_start) * 1000)
            updates = sorted(set(r.arrivals))  # one time per update event that held tokens
            spacing.extend((b - a_) * 1000 for a_, b in zip(updates, updates[1:]))
            rec = sends.get(r.tag)
            if not rec or len(rec["sends"]) != a.tokens:
                unmatched += 1
                continue
            s = rec["sends"]
            to_upstream.append((rec["recv"] - r.t_start) * 1000)
            upstream_ttft.append((s[0] - rec["recv"]) * 1000)
            lat = [(x - y) * 1000 for x, y in zip(r.arrivals, s)]
            first_lateness.append(lat[0])
            lateness.extend(lat)
            added.extend(lat[i] - lat[i - 1] for i in range(1, len(lat)))
            gaps.extend((r.arrivals[i] - r.arrivals[i - 1]) * 1000 for i in range(1, len(lat)))
            slip.extend((s[i] - s[i - 1] - a.token_delay) * 1000 for i in range(1, len(s)))
        tokens_seen = sum(sum(1 for x in r.arrivals if x is not None) for r in results)
        cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
        ours = cpu["worker"] + cpu["master"] + cpu["upstream"] + cpu["client"]
        cpu["others"] = max(0.0, cpu["machine"] - ours)
        pct = {k: 100 * v / wall for k, v in cpu.items()}
        q = client.pct
        return {
            "mode": mode, "level": level, "rounds": rounds, "replies": len(results),
            "ok": len(ok), "errors": dict(errors), "unmatched": unmatched,
            "wall_s": wall, "tokens": tokens_seen,
            "ttft_p50": q(ttft, 50), "ttft_p99": q(ttft, 99),
            "sent_p50": q(sent, 50), "sent_p99": q(sent, 99),
            "open_p50": q(opened, 50), "open_p99": q(opened, 99),
            "to_upstream_p50": q(to_upstream, 50), "to_upstream_p99": q(to_upstream, 99),
            "upstream_ttft_p50": q(upstream_ttft, 50), "upstream_ttft_p99": q(upstream_ttft, 99),
            "first_lateness_p50": q(first_lateness, 50), "first_lateness_p99": q(first_lateness, 99),
            "lateness_p50": q(lateness, 50), "lateness_p99": q(lateness, 99),
            "added_p50": q(added, 50), "added_p99": q(added, 99),
            "gap_p99": q(gaps, 99),
            "spacing_p50": q(spacing, 50), "spacing_p90": q(spacing, 90), "upstream_slip_p99": q(slip, 99),
            "cpu": cpu, "cpu_pct": pct,
            "worker_us_per_token": 1e6 * cpu["worker"] / tokens_seen if tokens_seen else None,
            "worker_ms_per_reply": 1e3 * cpu["worker"] / len(results) if results else None,
            "rss_peak_kb": max(samples["rss"], default=0), "peak_streams": peak_streams,
            "streams_p50": q(samples["streams"], 50),
            "client_lag_p99": q(samples["lag"], 99),
            "client_lag_max": max(samples["lag"], default=float("nan")),
        }

    # ------------------------------------------------------------------ the whole run

    def idle_memory(self) -> dict:
        """RSS and PSS of the gunicorn masters and of the workers, each summed."""
        self.wait_quiet()

        def total(read, pids):
            return sum(read(pid) or 0 for pid in pids)

        return {"master_rss_kb": total(procfs.rss_kb, self.masters),
                "worker_rss_kb": total(procfs.rss_kb, self.workers),
                "master_pss_kb": total(procfs.pss_kb, self.masters),
                "worker_pss_kb": total(procfs.pss_kb, self.workers)}

    def stop_latency(self) -> dict:
        """Replies stopped (on the following instance) once their first token arrived:
        ms from the stop POST to the stream's done event."""
        a = self.args
        self.ensure_users(1)
        self.wait_quiet()
        latencies, errors = [], Tally()
        for i in range(a.stops):
            self.run_seq += 1
            res = client.relay_round(self.app_port, self.users[0], f"bench s{self.run_seq}",
                                     a.tokens, a.timeout, client.Counter(),
                                     follow_port=self.follow_port, stop_port=self.follow_port)
            if res.ok and res.t_stop is not None and res.t_end is not None:
                latencies.append((res.t_end - res.t_stop) * 1000)
            else:
                errors[res.error or "not stopped"] += 1
            gevent.sleep(0.2)
        self.fetch_sends()
        q = client.pct
        return {"stops": len(latencies), "errors": dict(errors),
                "p50": q(latencies, 50), "p99": q(latencies, 99),
                "max": max(latencies, default=float("nan"))}

    def level(self, level: int, idle: dict) -> dict:
        self.ensure_users(level)
        pair = {}
        for mode in ("direct", "relay"):
            self.check_worker()
            self.wait_quiet()
            t0 = time.monotonic()
            others = self.wait_for_machine()
            waited = time.monotonic() - t0
            print(f"  K={level} {mode}" + (f" (waited {waited:.0f} s for other processes)"
                                           if waited > 5 else "") + " ...", end="", flush=True)
            pair[mode] = s = self.run(mode, level)
            s["others_before_pct"] = others
            errs = "".join(f", {k} x{v}" for k, v in s["errors"].items())
            print(f" {s['ok']}/{s['replies']} ok in {s['wall_s']:.1f} s{errs}; TTFT p50 "
                  f"{s['ttft_p50']:.0f} ms, added p99 {s['added_p99']:.0f} ms; CPU % of a core: "
                  f"worker {s['cpu_pct']['worker']:.0f} (+{s['cpu_pct']['worker_wait']:.0f} "
                  f"waiting), client {s['cpu_pct']['client']:.0f}, upstream "
                  f"{s['cpu_pct']['upstream']:.0f}, other processes {s['cpu_pct']['others']:.0f}",
                  flush=True)
        return compare(pair, idle)

    def main(self) -> dict:
        a = self.args
        nofile = processes.raise_nofile()
        print(machine_line(nofile), flush=True)
        print(f"reply: {a.tokens} tokens, {a.token_delay * 1000:.0f} ms apart, first after "
              f"{a.ttft * 1000:.0f} ms ({self.reply_seconds:.2f} s); each person sends again "
              f"0-{a.think * 1000:.0f} ms after a reply ends", flush=True)
        self.start()
        where = (f"two instances on one PostgreSQL database, each with {a.workers} worker(s): "
                 f"send on :{self.app_port}, follow and stop on :{self.follow_port}"
                 if a.database_url else f"{a.workers} worker(s) on SQLite, :{self.app_port}")
        print(f"app: {where}; gunicorn masters {self.masters}, workers {self.workers}; "
              f"upstream {self.base_url} ({'threads' if a.upstream_threads else 'gevent'}); "
              f"logs in {self.workdir}", flush=True)
        if a.app_cpus or a.harness_cpus:
            print(f"pinned: app to CPUs {sorted(a.app_cpus or [])}, client and upstream to "
                  f"{sorted(a.harness_cpus or [])}", flush=True)
        background = self.background_load()
        print(f"other processes on this machine used {background:.0f}% of a core while the "
              "benchmark was idle", flush=True)
        self.ensure_users(3)
        for mode in ("direct", "relay"):  # warm-up: imports, caches, connection pools
            self.run(mode, 3, profile=False)
        idle = self.idle_memory()
        print(f"idle RSS: master {idle['master_rss_kb'] / 1024:.1f} MB + worker "
              f"{idle['worker_rss_kb'] / 1024:.1f} MB", flush=True)
        stops = self.stop_latency()
        rows: dict[int, dict] = {}
        first_fail = None
        for level in sorted(set(a.ttft_levels) | set(a.steps)):
            if first_fail is not None and level not in a.ttft_levels:
                continue
            rows[level] = self.level(level, idle)
            if level in a.steps and not rows[level]["pass"] and first_fail is None \
                    and not a.keep_going:
                first_fail = level
        for _ in range(a.refine):  # bisect between the last pass and the first failure
            lo, hi = capacity(rows, a.steps)
            if hi is None or hi - lo <= max(2, hi // 10):
                break
            mid = (lo + hi) // 2 if lo else hi // 2
            rows[mid] = self.level(mid, idle)
            rows[mid]["refined"] = True
        idle_after = self.idle_memory()
        background_after = self.background_load()
        summary = {"args": vars(a), "machine": machine_line(nofile), "idle": idle,
                   "idle_after": idle_after, "background_pct": [background, background_after],
                   "rows": [rows[k] for k in sorted(rows)], "stops": stops}
        report(summary, a)
        return summary


def capacity(rows: dict, steps: list[int]) -> tuple[int, int | None]:
    """The largest passing level below the first failing one, and that failing level."""
    measured = sorted(k for k in rows if k in steps or rows[k].get("refined"))
    best = 0
    for level in measured:
        if not rows[level]["pass"]:
            return best, level
        best = level
    return best, None


def compare(pair: dict, idle: dict) -> dict:
    d, r = pair["direct"], pair["relay"]
    added = r["added_p99"] - d["added_p99"]
    row = {
        "level": r["level"], "direct": d, "relay": r,
        "ttft_over_p50": r["ttft_p50"] - d["ttft_p50"],
        "ttft_over_p99": r["ttft_p99"] - d["ttft_p99"],
        "added_p99_over": added,
        "rss_per_stream_kb": (r["rss_peak_kb"] - idle["worker_rss_kb"]) / max(r["peak_streams"], 1),
    }
    errors = sum(r["errors"].values()) + sum(d["errors"].values())
    row["held"] = r["peak_streams"] >= HELD_SHARE * r["level"]
    row["pass"] = (errors == 0 and r["ok"] == r["replies"] and added < ADDED_P99_TARGET_MS
                   and row["held"])
    return row


def machine_line(nofile: int) -> str:
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"machine: {os.cpu_count()} cores ({model}), {mem:.0f} GiB, Linux "
            f"{platform.release()}, Python {platform.python_version()}, open files {nofile}; "
            "client, fake upstream and app share these cores")


def fmt(x, digits=1):
    if x is None or x != x:
        return "-"
    return f"{x:.{digits}f}"


def report(summary: dict, a) -> None:
    rows = summary["rows"]
    idle, after = summary["idle"], summary["idle_after"]
    print()
    print("1. Time to first token, ms: from sending the message to its first token at the "
          "client")
    print(f"{'K':>5} {'direct p50':>10} {'p99':>7} {'relay p50':>10} {'p99':>7} "
          f"{'overhead p50':>12} {'p99':>7}")
    for row in rows:
        d, r = row["direct"], row["relay"]
        print(f"{row['level']:>5} {fmt(d['ttft_p50']):>10} {fmt(d['ttft_p99']):>7} "
              f"{fmt(r['ttft_p50']):>10} {fmt(r['ttft_p99']):>7} "
              f"{fmt(row['ttft_over_p50']):>12} {fmt(row['ttft_over_p99']):>7}")
    print("   where the relay's time goes, p50 / p99 ms after the message was sent:")
    print(f"{'K':>5} {'send answered':>15} {'stream open':>15} {'upstream asked':>15} "
          f"{'(upstream TTFT)':>15} {'first token late':>17}")
    for row in rows:
        r = row["relay"]
        print(f"{row['level']:>5} "
              + " ".join(f"{fmt(r[k + '_p50']) + ' / ' + fmt(r[k + '_p99']):>15}"
                         for k in ("sent", "open", "to_upstream", "upstream_ttft"))
              + f" {fmt(r['first_lateness_p50']) + ' / ' + fmt(r['first_lateness_p99']):>17}")
    print()
    print("2. Concurrent streams. Lateness: token's arrival at the client minus its send by "
          "the upstream;\n   added: change of lateness from one token to the next (inter-token "
          "delay added), ms")
    print(f"{'K':>5} {'replies ok':>11} {'peak open':>9} {'late p50':>8} {'late p99':>8} "
          f"{'added p50':>9} {'added p99':>9} {'direct p99':>10} {'added-over p99':>14} "
          f"{'upstream slip p99':>17}  result")
    for row in rows:
        d, r = row["direct"], row["relay"]
        verdict = "ok" if row["pass"] else "FAIL"
        detail = ", ".join(f"{k} x{v}" for k, v in {**d["errors"], **r["errors"]}.items())
        if not row["held"]:
            detail = ", ".join(filter(None, [detail, f"only {r['peak_streams']} of "
                                             f"{row['level']} streams open at once"]))
        print(f"{row['level']:>5} {r['ok']:>5}/{r['replies']:<5} {r['peak_streams']:>9} "
              f"{fmt(r['lateness_p50']):>8} {fmt(r['lateness_p99']):>8} "
              f"{fmt(r['added_p50']):>9} {fmt(r['added_p99']):>9} {fmt(d['added_p99']):>10} "
              f"{fmt(row['added_p99_over']):>14} {fmt(r['upstream_slip_p99']):>17}  {verdict}"
              + (f" ({detail})" if detail else ""))
    print()
    print("3. Server cost during the relay runs (worker: every gunicorn worker, summed). CPU in "
          "% of one core;\n   'wait' is time the worker was runnable but had no core. Client and "
          "upstream CPU relay / direct.")
    print(f"{'K':>5} {'worker':>6} {'wait':>5} {'us/token':>8} {'ms/reply':>8} {'peak RSS MB':>11} "
          f"{'KB/stream':>9} {'client':>11} {'upstream':>11} {'others':>11} "
          f"{'client lag p99 ms':>17}")
    noisy = False
    for row in rows:
        d, r = row["direct"], row["relay"]
        rp, dp = r["cpu_pct"], d["cpu_pct"]
        flag = "!" if max(rp["others"], dp["others"]) > a.others_max else " "
        noisy = noisy or flag == "!"
        per_stream = fmt(row["rss_per_stream_kb"], 0) if row["level"] >= 10 else "-"
        print(f"{row['level']:>5} {fmt(rp['worker'], 0):>6} {fmt(rp['worker_wait'], 0):>5} "
              f"{fmt(r['worker_us_per_token'], 0):>8} {fmt(r['worker_ms_per_reply'], 1):>8} "
              f"{fmt(r['rss_peak_kb'] / 1024):>11} {per_stream:>9} "
              f"{fmt(rp['client'], 0) + ' / ' + fmt(dp['client'], 0):>11} "
              f"{fmt(rp['upstream'], 0) + ' / ' + fmt(dp['upstream'], 0):>11} "
              f"{fmt(rp['others'], 0) + ' / ' + fmt(dp['others'], 0):>10}{flag}"
              f"{fmt(r['client_lag_p99']) + ' / ' + fmt(d['client_lag_p99']):>17}")
    if noisy:
        print(f"   ! other processes used more than {a.others_max:.0f}% of a core during this "
              "level: its latencies are not the app's alone")
    print()
    idle_mb = (idle["master_rss_kb"] + idle["worker_rss_kb"]) / 1024
    pss = ((idle["master_pss_kb"] or 0) + (idle["worker_pss_kb"] or 0)) / 1024
    after_mb = (after["master_rss_kb"] + after["worker_rss_kb"]) / 1024
    bg = summary["background_pct"]
    print(f"Idle app memory: RSS master {idle['master_rss_kb'] / 1024:.1f} MB + worker "
          f"{idle['worker_rss_kb'] / 1024:.1f} MB = {idle_mb:.1f} MB (PSS {pss:.1f} MB); "
          f"{after_mb:.1f} MB idle after the run.")
    print(f"Other processes on the machine, benchmark idle: {bg[0]:.0f}% of a core before, "
          f"{bg[1]:.0f}% after.")
    print()
    print("Targets:")
    top = max(a.ttft_levels)
    for row in rows:
        if row["level"] == top:
            met = (row["ttft_over_p50"] < TTFT_P50_TARGET_MS
                   and row["ttft_over_p99"] < TTFT_P99_TARGET_MS)
            print(f"  TTFT overhead at {top}: p50 {fmt(row['ttft_over_p50'])} ms "
                  f"(target < {TTFT_P50_TARGET_MS:.0f}), p99 {fmt(row['ttft_over_p99'])} ms "
                  f"(target < {TTFT_P99_TARGET_MS:.0f}): {'met' if met else 'missed'}")
    if a.steps:
        best, fail = capacity({row["level"]: row for row in rows}, a.steps)
        print(f"  concurrent streams, zero errors and added p99 < {ADDED_P99_TARGET_MS:.0f} "
              f"ms: {best}" + (f" (fails at {fail})" if fail else " (no step failed)")
              + f"; target >= {STREAMS_TARGET}: {'met' if best >= STREAMS_TARGET else 'missed'}")
    print(f"  idle RSS (master + worker) {idle_mb:.1f} MB; target < {IDLE_RSS_TARGET_MB:.0f} MB: "
          f"{'met' if idle_mb < IDLE_RSS_TARGET_MB else 'missed'}")


def delivery_figures(summary: dict, args) -> dict:
    """The figures that say whether any process delivers a reply as smoothly as one worker."""
    one = next(row["relay"] for row in summary["rows"] if row["level"] == 1)
    instances = 2 if args.database_url else 1
    best, _ = capacity({row["level"]: row for row in summary["rows"]}, args.steps)
    stops = summary["stops"]
    return {"spacing_p50": one["spacing_p50"], "spacing_p90": one["spacing_p90"],
            "ttft_p50": one["ttft_p50"], "ttft_p99": one["ttft_p99"],
            "stop_p50": stops["p50"], "stop_p99": stops["p99"],
            "ms_per_reply": one["worker_ms_per_reply"], "us_per_token": one["worker_us_per_token"],
            "capacity_per_worker": best / (args.workers * instances) if args.steps else None}


def report_delivery(summary: dict, baseline: dict | None, args) -> None:
    """Part 4: update spacing, first token and Stop, one reply at a time, and the cost."""
    names = ["spacing_p50", "spacing_p90", "ttft_p50", "ttft_p99", "stop_p50", "stop_p99",
             "ms_per_reply", "us_per_token", "capacity_per_worker"]
    heads = ["spacing p50", "p90", "1st token p50", "p99", "stop p50", "p99", "ms/reply",
             "us/token", "capacity/worker"]
    setup = (f"{args.workers} worker(s) x 2 instances, PostgreSQL" if args.database_url
             else f"{args.workers} worker(s), SQLite")
    print()
    print("4. Delivery, one reply at a time (K = 1), ms: spacing between update events at "
          "the client, first token\n   after sending, Stop (pressed on the following "
          f"process after the first token) to done; worker CPU\n   per reply and per token "
          f"at K = 1; capacity per worker (part 2's capacity / workers). {args.tokens} tokens, "
          f"{1 / args.token_delay:.0f} tokens/s.")
    print(f"{'set-up':>36} " + " ".join(f"{h:>{max(len(h), 8)}}" for h in heads))
    rows = []
    if baseline is not None:
        rows.append(("1 worker, SQLite (baseline)", delivery_figures(baseline, baseline_args(args))))
    rows.append((setup, delivery_figures(summary, args)))
    for label, figures in rows:
        print(f"{label:>36} " + " ".join(f"{fmt(figures[n]):>{max(len(h), 8)}}"
                                         for n, h in zip(names, heads)))
    if baseline is not None:
        base, this = rows[0][1], rows[1][1]
        ratios = [this[n] / base[n] if this[n] and base[n] else None for n in names]
        print(f"{'ratio to the baseline':>36} " + " ".join(
            f"{fmt(r, 2):>{max(len(h), 8)}}" for r, h in zip(ratios, heads)))
        print(f"   first token p50 {fmt(this['ttft_p50'] - base['ttft_p50'])} ms later than on "
              "one worker (target: at most 15); spacing p90 target <= 60 ms; Stop target "
              "<= 100 ms")
    print("   what one notification costs: bench/notify_bench.py (PostgreSQL NOTIFY round "
          "trip against SELECT 1)")


def main(argv=None):
    args = parse_args(argv)
    args.database_url = None
    with throwaway_database(args.postgres) as database_url:
        args.database_url = database_url
        baseline = None
        if (args.workers > 1 or database_url) and not args.no_baseline:
            print("== baseline: one worker on SQLite (the ratios below divide by it) ==")
            baseline = run_bench(baseline_args(args))
            print(f"\n== {args.workers} worker(s)"
                  + (" per instance, two instances on PostgreSQL ==" if database_url
                     else " on SQLite =="))
        summary = run_bench(args)
    report_delivery(summary, baseline, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"baseline": baseline, **summary}, indent=1,
                                              default=str))


def baseline_args(args):
    """The same replies, one worker on SQLite; only what the delivery figures need, unless
    --full-baseline."""
    base = argparse.Namespace(**vars(args))
    base.workers, base.database_url = 1, None
    if not args.full_baseline:
        base.steps, base.ttft_levels, base.refine = [], [1], 0
    return base


def run_bench(args) -> dict:
    bench = Bench(args)
    failed = True
    try:
        summary = bench.main()
        failed = False
        return summary
    finally:
        bench.stop()
        if failed:
            print(f"(logs and database kept in {bench.workdir})", file=sys.stderr)
        else:
            shutil.rmtree(bench.workdir, ignore_errors=True)


@contextlib.contextmanager
def throwaway_database(postgres: str | None):
    """None without --postgres; else a fresh database on that server (or on the one
    scripts/postgres starts), dropped afterwards."""
    if postgres is None:
        yield None
        return
    import psycopg  # only PostgreSQL runs need it

    server = postgres
    if postgres == "start":
        server = subprocess.run([str(ROOT / "scripts" / "postgres"), "start"], check=True,
                                capture_output=True, text=True).stdout.strip()
    name = f"stream_bench_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        scheme, netloc, _, query, _ = urllib.parse.urlsplit(server)
        yield urllib.parse.urlunsplit((scheme, netloc, f"/{name}", query, ""))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
