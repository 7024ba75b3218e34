"""Large-image payloads and a worker's memory, for the image memory test and benchmark.

A PNG that is small on the wire but large decoded, people sending it at once through the
new-chat form, and a process's resident memory sampled while they do.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor

import requests

from harness.procfs import rss_kb

IMAGES_PER_SEND = 4
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
            self.peak_mb = max(self.peak_mb, rss_kb(self.pid) / 1024)
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
    return rss_kb(pid) / 1024
