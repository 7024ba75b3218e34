"""Page weight and render time: a first visit to a conversation page, and the app's idle memory.

Starts the app as a PaaS does (harness/paas.py: honcho runs the Procfile's release, then web)
against the fake upstream, fills a conversation with a few turns of Markdown (tables,
code), then measures, as a browser would fetch them:

  * bytes transferred for the page and every CSS and JS file it links, compressed with
    what a browser accepts (gzip, deflate, br, zstd) and with gzip alone; target < 60 KB;
  * whether static files come with versioned URLs and a year-long immutable cache;
  * the server's time to answer the page (p50/p90 over N requests on loopback);
  * the resident memory of gunicorn's master and worker, idle, after all that.

    .venv/bin/python bench/page_weight.py             # about 20 seconds
    .venv/bin/python bench/page_weight.py --requests 500 --turns 20

Not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from harness.fake_upstream import FakeUpstream, Reply  # noqa: E402
from harness.paas import PaasApp, app_environment, hidden_fields  # noqa: E402
from harness.procfs import children, pss_kb, rss_kb  # noqa: E402

API_KEY = "bench-key"
TARGET_KB = 60.0
IDLE_RSS_TARGET_MB = 100.0
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}
GZIP_ONLY = {"Accept-Encoding": "gzip"}
REPLY = """Here is a comparison, and a function that uses it.

| city | people | area (km²) |
|---|---:|---:|
| Rome | 2,750,000 | 1,285 |
| Milan | 1,370,000 | 182 |
| Naples | 910,000 | 119 |

```python
def density(people: int, area: float) -> float:
    \"\"\"People per square kilometre.\"\"\"
    return people / area


for city, people, area in CITIES:
    print(f"{city}: {density(people, area):.0f}")
```

Milan is by far the **densest** of the three; Rome is large but spread out.
"""


class Assets(HTMLParser):
    """The stylesheets, scripts and icon sprite a page links to (each file once)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "stylesheet" and found.get("href"):
            self.urls.append(found["href"])
        elif tag == "script" and found.get("src"):
            self.urls.append(found["src"])
        elif tag == "use" and found.get("href"):
            sprite = found["href"].split("#")[0]
            if sprite and sprite not in self.urls:
                self.urls.append(sprite)


def transferred(session: requests.Session, url: str, headers: dict[str, str]):
    """(body bytes as sent on the wire, Content-Encoding, Cache-Control) of one GET."""
    with session.get(url, headers=headers, stream=True, timeout=30) as response:
        response.raise_for_status()
        body = response.raw.read(decode_content=False)
        return (len(body), response.headers.get("Content-Encoding", "none"),
                response.headers.get("Cache-Control", ""))


def weigh(session: requests.Session, page_url: str, headers: dict[str, str]) -> list[tuple]:
    """One row per resource of a first visit: (path, bytes, encoding, cache-control)."""
    parser = Assets()
    parser.feed(session.get(page_url, timeout=30).text)
    rows = [(page_url, *transferred(session, page_url, headers))]
    for asset in parser.urls:
        rows.append((asset, *transferred(session, urljoin(page_url, asset), headers)))
    return rows


def render_times(session: requests.Session, url: str, count: int) -> list[float]:
    """Seconds to fetch the page, count times (after a warm-up), keep-alive connection."""
    for _ in range(5):
        session.get(url, headers=BROWSER, timeout=30).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, headers=BROWSER, timeout=30).raise_for_status()
        times.append(time.perf_counter() - started)
    return times


def gunicorn_pids(root_pid: int) -> list[int]:
    """gunicorn's master and workers among the descendants of root_pid (not the shell)."""
    found, queue = [], children(root_pid)
    while queue:
        pid = queue.pop(0)
        queue += children(pid)
        try:
            is_python = "python" in os.readlink(f"/proc/{pid}/exe")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if is_python and b"gunicorn" in cmdline:
            found.append(pid)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6, help="turns in the conversation")
    parser.add_argument("--requests", type=int, default=200, help="page requests timed")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp, FakeUpstream(api_key=API_KEY) as upstream:
        upstream.default_reply = Reply(REPLY)
        env = app_environment(f"sqlite:///{tmp}/bench.db", REGOLO_BASE_URL=upstream.base_url,
                              REGOLO_API_KEY=API_KEY, ACCESS_LOG="0")
        with PaasApp(env, Path(tmp) / "app.log") as app, requests.Session() as browser:
            fields = hidden_fields(browser.get(f"{app.url}/", timeout=30).text)
            page = browser.post(f"{app.url}/c", data={**fields, "content": "Compare cities"},
                                timeout=60).url.split("#")[0]
            for turn in range(1, args.turns):
                fields = hidden_fields(browser.get(page, timeout=30).text)
                browser.post(f"{page}/messages", data={**fields, "content": f"Question {turn}"},
                             timeout=60).raise_for_status()

            print(f"First visit to a conversation page of {args.turns} turns "
                  f"(HTML + CSS + JS, bytes on the wire):")
            for label, headers in (("browser (gzip, deflate, br, zstd)", BROWSER),
                                   ("gzip only", GZIP_ONLY)):
                rows = weigh(browser, page, headers)
                total = sum(row[1] for row in rows) / 1024
                print(f"\n  {label}: {total:.1f} KB total, target < {TARGET_KB:.0f} KB "
                      f"({'met' if total < TARGET_KB else 'MISSED'})")
                for path, size, encoding, cache in rows:
                    name = path.replace(app.url, "") if path.startswith("http") else path
                    print(f"    {size / 1024:6.1f} KB  {encoding:5}  {name[:60]:60}  {cache}")
            raw = sum(len(browser.get(urljoin(page, row[0]), timeout=30).content)
                      for row in weigh(browser, page, BROWSER))
            print(f"\n  uncompressed: {raw / 1024:.1f} KB")

            times = render_times(browser, page, args.requests)
            q = statistics.quantiles(times, n=10)
            print(f"\nServer time for the page ({args.requests} requests, loopback, "
                  f"compressed): p50 {statistics.median(times) * 1000:.1f} ms, "
                  f"p90 {q[8] * 1000:.1f} ms")

            time.sleep(2)
            pids = gunicorn_pids(app.honcho_pid)
            each = " + ".join(f"{rss_kb(pid) / 1024:.1f}" for pid in pids)
            rss = sum(rss_kb(pid) for pid in pids) / 1024
            pss = sum(pss_kb(pid) or 0 for pid in pids) / 1024
            print(f"\nIdle memory of gunicorn, master + worker: RSS {each} = {rss:.1f} MB "
                  f"(PSS, shared pages counted once: {pss:.1f} MB); target < "
                  f"{IDLE_RSS_TARGET_MB:.0f} MB ({'met' if rss < IDLE_RSS_TARGET_MB else 'MISSED'})")


if __name__ == "__main__":
    main()
