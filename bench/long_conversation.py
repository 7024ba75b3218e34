"""Long conversation benchmark: opening a conversation of 2,000 messages.

Fills a fresh database (SQLite under a temporary folder, or DATABASE_URL) through the
migrations with one conversation of TURNS turns of Markdown (a paragraph, a list, a code
block, a table), then requests its page REQUESTS times through the app in this process and
prints the server time (p50, p90) and the bytes of the page (as sent, and gzip-compressed
as a browser gets it):

- paged: the page as it is served, the latest MESSAGES_PER_PAGE messages (50);
- full: the same page rendering the whole shown branch (MESSAGES_PER_PAGE larger than the
  conversation), the baseline;
- earlier: one "Show earlier messages" fragment (what htmx loads on scrolling up).

    .venv/bin/python bench/long_conversation.py [turns] [requests]     # 1000 30 by default
"""

from __future__ import annotations

import gzip
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.conversations import tree
from webapp.conversations.models import Conversation, Status  # noqa: E402
from webapp.conversations.rendering import render_markdown  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.migrations_cli import enable_migrations  # noqa: E402

OWNER = "bench-owner-" + "x" * 32
EARLIER_URL = re.compile(r'hx-get="([^"]+/earlier\?before=\d+)"')
REPLY = """Here is what turn {n} asks for, with **emphasis** and `inline code`:

- the first point, about {n} things;
- the second point.

```python
def turn_{n}(values):
    return sorted(values)[:{n}]
```

| name | value |
|------|-------|
| turn | {n} |
| kind | table |
"""


def fill(turns: int) -> str:
    """One conversation of `turns` turns; its public id."""
    conversation = Conversation(owner_id=OWNER, model="m", title="A long conversation")
    db.session.add(conversation)
    for n in range(1, turns + 1):
        tree.append(conversation, "user", f"Question {n}: how does part {n} work?")
        reply = REPLY.format(n=n)
        tree.append(conversation, "assistant", reply, status=Status.COMPLETE,
                    content_html=str(render_markdown(reply)))
    db.session.commit()
    return conversation.public_id


def measure(app, path: str, requests: int, headers: dict | None = None) -> tuple:
    """Server times (seconds) of `requests` GETs of path, and the last body."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["owner"] = OWNER
    timings, body = [], b""
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path, headers=headers or {})
        body = response.get_data()
        timings.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return timings, body


def report(name: str, timings: list[float], body: bytes, baseline: float) -> None:
    p50 = statistics.median(timings)
    p90 = statistics.quantiles(timings, n=10)[-1]
    print(f"{name:8} p50 {p50 * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms  "
          f"({baseline / p50:5.1f}x faster than full)  "
          f"{len(body) / 1024:8.1f} KB, gzip {len(gzip.compress(body)) / 1024:7.1f} KB")


def main() -> None:
    turns, requests = (int(a) for a in (sys.argv[1:] or ["1000", "30"]))
    folder = tempfile.mkdtemp(prefix="long-conversation-bench-")
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.db")
    os.environ["TITLE_GENERATION"] = "0"
    paged = create_app()
    full = create_app({"MESSAGES_PER_PAGE": 10 * turns})
    enable_migrations(paged)
    with paged.app_context():
        upgrade()
        public_id = fill(turns)
        print(f"{db.engine.dialect.name}: one conversation of {2 * turns:,} messages, "
              f"{requests} requests each")
    url = f"/c/{public_id}"
    full_times, full_body = measure(full, url, requests)
    paged_times, paged_body = measure(paged, url, requests)
    earlier = EARLIER_URL.search(paged_body.decode())[1].replace("&amp;", "&")
    earlier_times, earlier_body = measure(paged, earlier, requests, {"HX-Request": "true"})
    baseline = statistics.median(full_times)
    report("full", full_times, full_body, baseline)
    report("paged", paged_times, paged_body, baseline)
    report("earlier", earlier_times, earlier_body, baseline)


if __name__ == "__main__":
    main()
