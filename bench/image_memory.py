"""Worker memory while people send large images at once: peak and settled RSS, limits on and off.

Starts the Procfile's web command (gunicorn, one gevent worker, bench/_harness.py) twice
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
import re
import struct
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness as h  # noqa: E402

API_KEY = "bench-key"
IMAGES_PER_SEND = 4
LIMITS_OFF = {"MAX_IMAGE_PIXELS": str(10**10), "IMAGE_DECODES_AT_ONCE": "64"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def flat_png(side: int) -> bytes:
    """A side×side RGBA PNG of one colour, compressed row by row (the bytes are small,
    the decoded image is not; nothing of its decoded size is held here)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    row = b"\0" + bytes([30, 120, 200, 255]) * side  # filter type 0, then the pixels
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


class PeakRss:
    """Samples a process's RSS every 10 ms in a thread while in a with block; peak in MB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak_mb = max(self.peak_mb, h.rss_kb(self.pid) / 1024)
            self._done.wait(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def send_with_images(base_url: str, png: bytes, count: int = IMAGES_PER_SEND) -> requests.Response:
    """A new person's first message, carrying `count` copies of the PNG, as the form posts it."""
    person = requests.Session()
    token = CSRF.search(person.get(base_url, timeout=60).text).group(1)
    files = [("images", (f"big-{i}.png", png, "image/png")) for i in range(count)]
    return person.post(f"{base_url}/c", data={"content": "What is this?", "csrf_token": token},
                       files=files, allow_redirects=False, timeout=300)


def send_at_once(base_url: str, png: bytes, sends: int, count: int = IMAGES_PER_SEND) -> list[int]:
    """`sends` people sending at the same time; the status of each answer."""
    with ThreadPoolExecutor(sends) as pool:
        return [r.status_code for r in pool.map(
            lambda _: send_with_images(base_url, png, count), range(sends))]


def rss_mb(pid: int) -> float:
    """A process's resident memory in MB."""
    return h.rss_kb(pid) / 1024


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
        upstream, upstream_url = h.start_upstream(5, 0.0, 0.0, API_KEY, False,
                                                  Path(workdir) / "upstream.log")
        try:
            for setting, extra in (("limits on", {}), ("limits off", LIMITS_OFF)):
                port = h.free_port()
                env = {"DATABASE_URL": f"sqlite:///{workdir}/{setting[-2:]}.db",
                       "REGOLO_BASE_URL": upstream_url, "REGOLO_API_KEY": API_KEY,
                       "SECRET_KEY": "bench", "ACCESS_LOG": "0", "TITLE_GENERATION": "0",
                       **extra}
                app = h.start_app(env, port, Path(workdir) / f"{setting[-2:]}.log")
                try:
                    worker = h.children(app.pid)[0]
                    base_url = f"http://127.0.0.1:{port}"
                    send_with_images(base_url, flat_png(64), 1)  # Pillow imported, pools made
                    for label, png in payloads:
                        print(f"{setting:>10}, {label}: {measure(base_url, worker, png, args.sends)}",
                              flush=True)
                finally:
                    h.stop_process(app)
        finally:
            h.stop_process(upstream)


if __name__ == "__main__":
    main()
