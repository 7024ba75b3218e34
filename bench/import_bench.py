"""Importing a large ChatGPT export: time, and how far memory grows, against loading it whole.

Writes a synthetic conversations.json (N conversations of T turns, each message about
400 characters, every fourth conversation with a regenerated reply), then in this process
on a fresh SQLite database: (1) the baseline, json.load of the file, the way an importer
that reads it whole would start; (2) the import (webapp/imports/run.py) of the same file.
For each it prints the time and the peak RSS over the start (sampled every 10 ms).

    .venv/bin/python bench/import_bench.py                      # 1,000 conversations
    .venv/bin/python bench/import_bench.py --conversations 5000 # about 200 MB

Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


class PeakRss:
    """The highest RSS of this process while the block runs, sampled every 10 ms."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss_mb()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def conversation(number: int, turns: int) -> dict:
    """One ChatGPT conversation of `turns` user/assistant pairs."""
    words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod "
             "tempor incididunt ut labore et dolore magna aliqua ") * 4
    mapping = {"root": {"id": "root", "parent": None, "children": [], "message": None}}
    parent = "root"
    for turn in range(turns * 2):
        key = f"n{turn}"
        role = "user" if turn % 2 == 0 else "assistant"
        mapping[key] = {"id": key, "parent": parent, "children": [], "message": {
            "id": key, "author": {"role": role}, "create_time": 1.7e9 + number * 100 + turn,
            "content": {"content_type": "text", "parts": [f"{number}.{turn} {words}"]},
            "status": "finished_successfully", "recipient": "all",
            "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {}}}
        mapping[parent]["children"].append(key)
        parent = key
    if number % 4 == 0:  # a second version of the last reply
        mapping["again"] = {**mapping[parent], "id": "again"}
        mapping[mapping[parent]["parent"]]["children"].append("again")
    return {"title": f"Conversation {number}", "conversation_id": f"c-{number}",
            "create_time": 1.7e9 + number * 100, "update_time": 1.7e9 + number * 100 + 99,
            "current_node": parent, "default_model_slug": "gpt-4o", "mapping": mapping}


def write_export(path: Path, conversations: int, turns: int) -> None:
    with path.open("w") as out:
        out.write("[")
        for number in range(conversations):
            out.write(("," if number else "") + json.dumps(conversation(number, turns)))
        out.write("]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    export = folder / "conversations.json"
    write_export(export, args.conversations, args.turns)
    print(f"export: {args.conversations:,} conversations of {args.turns} turns, "
          f"{export.stat().st_size / 2**20:,.0f} MB")

    os.environ.update(SECRET_KEY="bench", DATABASE_URL=f"sqlite:///{folder / 'bench.db'}")
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.imports.run import run
    from webapp.imports.save import SaveSettings
    from webapp.imports.source import ZipLimits
    from webapp.migrations_cli import enable_migrations

    app = create_app({"TESTING": True})
    enable_migrations(app)
    with app.app_context():
        upgrade()

    started = time.monotonic()
    with PeakRss() as whole, export.open("rb") as file:
        loaded = json.load(file)
    whole_seconds = time.monotonic() - started
    del loaded
    print(f"baseline json.load:  {whole_seconds:6.1f} s  peak RSS +"
          f"{whole.peak - whole.start:5.0f} MB")

    config = app.config
    with app.app_context():
        started = time.monotonic()
        with PeakRss() as streamed, export.open("rb") as file:
            report = run(file, "bench-owner", ZipLimits(10, 2**40, 100, 2**20), SaveSettings(
                "default", config["MAX_TITLE_CHARS"], config["MAX_IMAGES"],
                config["MAX_IMAGE_BYTES"], app.extensions["images"]))
        seconds = time.monotonic() - started
    imported = len(report.having("imported"))
    print(f"import (streamed):   {seconds:6.1f} s  peak RSS +"
          f"{streamed.peak - streamed.start:5.0f} MB  "
          f"({imported:,} imported, {imported / seconds:,.0f}/s, problem: {report.problem})")
    print(f"ratio of peak growth, import / json.load: "
          f"{(streamed.peak - streamed.start) / max(whole.peak - whole.start, 1):.2f}")


if __name__ == "__main__":
    main()
