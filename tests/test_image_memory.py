"""The worker's memory stays bounded while people send large images at once, and comes back.

Runs the Procfile's gunicorn (one gevent worker) and sends what once took a worker from
72 MB to 4 GB: people at once, each with 4 PNGs of ~200 KB that decode to 7000×7000 RGBA.
"""

from __future__ import annotations

import time

from harness import processes
from harness.images import PeakRss, flat_png, rss_mb, send_at_once, send_with_images
from harness.procfs import children
from tests.conftest import API_KEY

MAX_PIXELS = 18_000_000
# One 4200×4200 RGBA image (17.6 MP) decoded and reduced takes about 100 MB at its peak;
# four decoded at once would take 400 MB, and the 7000×7000 payload decoded, gigabytes.
PEAK_BOUND_MB = 160
SETTLED_BOUND_MB = 30


def test_concurrent_large_images_keep_the_worker_s_memory_bounded(database_url, upstream,
                                                                   tmp_path):
    port = processes.free_port()
    app = processes.start_app({"DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
                             "REGOLO_BASE_URL": upstream.base_url, "REGOLO_API_KEY": API_KEY,
                             "FLASK_DEBUG": "0", "WEB_CONCURRENCY": "1", "ACCESS_LOG": "0",
                             "TITLE_GENERATION": "0", "MAX_IMAGE_PIXELS": str(MAX_PIXELS)},
                            port, tmp_path / "app.log")
    try:
        worker, base_url = children(app.pid)[0], f"http://127.0.0.1:{port}"
        assert send_with_images(base_url, flat_png(64), 1).status_code == 303  # Pillow loaded
        too_many_pixels, under_the_limit = flat_png(7000), flat_png(4200)
        idle = rss_mb(worker)
        with PeakRss(worker) as peak:
            refused = send_with_images(base_url, too_many_pixels)
            assert refused.status_code == 422
            assert "“big-0.png” has more than 18 megapixels" in refused.text
            assert send_at_once(base_url, too_many_pixels, 8) == [422] * 8
            assert send_at_once(base_url, under_the_limit, 2, count=2) == [303] * 2
        assert peak.peak_mb - idle < PEAK_BOUND_MB, f"idle {idle:.0f} MB, peak {peak.peak_mb:.0f} MB"
        deadline = time.monotonic() + 5
        while rss_mb(worker) - idle >= SETTLED_BOUND_MB and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rss_mb(worker) - idle < SETTLED_BOUND_MB, f"idle {idle:.0f} MB, now {rss_mb(worker):.0f}"
    finally:
        processes.stop_process(app)
