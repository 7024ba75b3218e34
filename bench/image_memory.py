"""Worker memory while people send large images at once: peak and settled RSS, limits on and off.

Starts the Procfile's web command (gunicorn, one gevent worker, harness/processes.py) twice
on a fresh SQLite database with the fake upstream: once with the image settings as
configured, once with them turned off (no pixel limit, every image decoded at once). Each
gets the same payload: N people at once, each sending a message with 4 PNGs of ~200 KB
that decode to 7000×7000 RGBA (the default refuses them from their header), then the same
with PNGs just under the pixel limit (decoded, reduced and stored). For each it prints the
worker's RSS when idle, at its peak (sampled every 10 ms) and settled 3 s after the last
answer, and the answers' statuses.

    .venv/bin/python bench/image_memory.py                 # 8 people, as in the report
    .venv/bin/python bench/image_memory.py --sends 4       # lighter

Not a test: it asserts nothing (tests/test_image_memory.py holds a bound on a smaller run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from harness import processes, procfs  # noqa: E402
from harness.images import (IMAGES_PER_SEND, PeakRss, flat_png, rss_mb,  # noqa: E402
                            send_at_once)

API_KEY = "bench-key"
LIMITS_OFF = {"MAX_IMAGE_PIXELS": str(10**10), "IMAGE_DECODES_AT_ONCE": "64"}


def settled_rss_mb(pid: int, seconds: float = 3.0) -> float:
    """RSS after the worker has been left alone for `seconds`."""
    time.sleep(seconds)
    return rss_mb(pid)


def measure(base_url: str, worker: int, png: bytes, sends: int) -> str:
    idle = rss_mb(worker)
    started = time.monotonic()
    with PeakRss(worker) as peak:
        statuses = send_at_once(base_url, png, sends)
    took = time.monotonic() - started
    settled = settled_rss_mb(worker)
    answers = ", ".join(f"{statuses.count(s)}×{s}" for s in sorted(set(statuses)))
    return (f"idle {idle:6.0f}  peak {peak.peak_mb:6.0f} (+{peak.peak_mb - idle:.0f})  "
            f"settled {settled:6.0f} (+{settled - idle:.0f}) MB  in {took:5.1f} s  [{answers}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=8, help="people sending at once")
    args = parser.parse_args()
    payloads = [("7000×7000 PNGs", flat_png(7000)), ("4800×4800 PNGs", flat_png(4800))]
    for label, png in payloads:
        print(f"{label}: {len(png) / 1024:.0f} KB each, {IMAGES_PER_SEND} per message, "
              f"{args.sends} people at once")
    with tempfile.TemporaryDirectory() as workdir:
        upstream, upstream_url = processes.start_upstream(5, 0.0, 0.0, API_KEY, False,
                                                  Path(workdir) / "upstream.log")
        try:
            for setting, extra in (("limits on", {}), ("limits off", LIMITS_OFF)):
                port = processes.free_port()
                env = {"DATABASE_URL": f"sqlite:///{workdir}/{setting[-2:]}.db",
                       "REGOLO_BASE_URL": upstream_url, "REGOLO_API_KEY": API_KEY,
                       "SECRET_KEY": "bench", "ACCESS_LOG": "0", "TITLE_GENERATION": "0",
                       **extra}
                app = processes.start_app(env, port, Path(workdir) / f"{setting[-2:]}.log")
                try:
                    worker = procfs.children(app.pid)[0]
                    base_url = f"http://127.0.0.1:{port}"
                    send_with_images(base_url, flat_png(64), 1)  # Pillow imported, pools made
                    for label, png in payloads:
                        print(f"{setting:>10}, {label}: {measure(base_url, worker, png, args.sends)}",
                              flush=True)
                finally:
                    processes.stop_process(app)
        finally:
            processes.stop_process(upstream)


if __name__ == "__main__":
    main()
