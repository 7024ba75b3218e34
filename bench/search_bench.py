"""Search benchmark: query time over a large database, and what the index costs writers.

Fills a fresh database (SQLite under a temporary folder, or DATABASE_URL) through the
migrations, so the index is the real one: OWNERS owners, each with CONVERSATIONS chats
of MESSAGES messages of about 60 words. Then prints:

- the median and slowest time of one owner's search (titles and messages, with snippets);
- the cost of the partial-text flushes of a reply being written (indexed not at all)
  against the same updates of a finished message (re-indexed every time).

    .venv/bin/python bench/search_bench.py [owners conversations messages]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import text  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.migrations_cli import enable_migrations  # noqa: E402
from webapp.search import index  # noqa: E402

WORDS = [f"w{i}" for i in range(20_000)]
QUERIES = [["w7"], ["w123", "w456"], ["w19999"], ["nothing-matches"]]
FLUSHES = 2_000


def fill(owners: int, conversations: int, messages: int) -> None:
    rng = random.Random(1)
    conversation_rows = [
        {"public_id": f"c{o}-{c}", "owner_id": f"owner-{o}",
         "title": " ".join(rng.choices(WORDS, k=5))}
        for o in range(owners) for c in range(conversations)]
    db.session.execute(text(
        "INSERT INTO conversations (public_id, owner_id, title, title_is_custom, model, "
        "created_at, updated_at) VALUES (:public_id, :owner_id, :title, false, 'm', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"), conversation_rows)
    ids = db.session.scalars(text("SELECT id FROM conversations")).all()
    for conversation_id in ids:
        db.session.execute(text(
            "INSERT INTO messages (conversation_id, role, content, reasoning, status, "
            "stop_requested, created_at, updated_at) VALUES (:conversation, 'user', "
            ":content, '', 'complete', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
            [{"conversation": conversation_id,
              "content": " ".join(rng.choices(WORDS, k=60))} for _ in range(messages)])
    db.session.commit()


def time_searches(owners: int) -> list[float]:
    timings = []
    for owner in range(min(owners, 20)):
        for terms in QUERIES:
            start = time.perf_counter()
            index.search(f"owner-{owner}", terms)
            timings.append(time.perf_counter() - start)
    return timings


def time_flushes(status: str) -> float:
    """Seconds per content update of one message with this status."""
    message_id = db.session.scalar(text("SELECT min(id) FROM messages"))
    db.session.execute(text("UPDATE messages SET status = :status WHERE id = :id"),
                       {"status": status, "id": message_id})
    db.session.commit()
    start = time.perf_counter()
    for n in range(FLUSHES):
        db.session.execute(text("UPDATE messages SET content = :content WHERE id = :id"),
                           {"content": " ".join(WORDS[n:n + 200]), "id": message_id})
        db.session.commit()
    return (time.perf_counter() - start) / FLUSHES


def main() -> None:
    owners, conversations, messages = (int(a) for a in (sys.argv[1:] or ["50", "40", "50"]))
    folder = tempfile.mkdtemp(prefix="search-bench-")
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.db")
    app = create_app()
    enable_migrations(app)
    with app.app_context():
        upgrade()
        start = time.perf_counter()
        fill(owners, conversations, messages)
        total = owners * conversations * messages
        print(f"{db.engine.dialect.name}: {owners} owners x {conversations} conversations x "
              f"{messages} messages = {total:,} messages, written and indexed in "
              f"{time.perf_counter() - start:.1f} s")
        timings = time_searches(owners)
        print(f"one owner's search: median {statistics.median(timings) * 1000:.1f} ms, "
              f"slowest {max(timings) * 1000:.1f} ms ({len(timings)} searches)")
        streaming, finished = time_flushes("streaming"), time_flushes("complete")
        print(f"content update of a reply being written: {streaming * 1e6:.0f} µs; "
              f"of a finished message (re-indexed): {finished * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
