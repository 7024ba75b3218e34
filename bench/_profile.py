"""Summarise a py-spy ``--format raw`` profile of the app's gevent worker by activity and by layer.

    python bench/_profile.py /tmp/prof/worker-100.txt

py-spy sees the greenlet that is running, so samples whose leaf is the idle hub (or one of
gevent's resolver threads waiting for work) are counted apart as idle.
"""

from __future__ import annotations

import re
import sys
from collections import Counter

IDLE_LEAVES = ("Hub.run ", "acquire_with_timeout ", "_Condition.wait (gevent/_threading")
IDLE_FRAMES = ("_WorkerGreenlet.run ",)

# Deepest marker in a stack wins: the most specific activity.
ACTIVITIES = [
    ("Relay._flush_loop ", "flusher thread: partial text to the DB"),
    ("_generate ", "generation: history, setup"),
    ("LLMClient._request ", "generation: upstream request (requests)"),
    ("LLMClient.stream ", "generation: reading the upstream stream"),
    ("LiveReply.append ", "generation: append + wake followers"),
    ("finish (webapp/replies/generation.py", "generation: final write"),
    ("AsyncWorker.handle_request ", "HTTP handling outside Flask (gunicorn)"),
    ("Response.write (gunicorn", "HTTP response writes (gunicorn)"),
    ("Flask.wsgi_app ", "Flask request handling (other)"),
    ("send (webapp/chat/views.py", "POST /c/<id>/messages (send)"),
    ("create (webapp/chat/views.py", "POST /c (create)"),
    ("show (webapp/chat/views.py", "GET /c/<id> (page)"),
    ("stream (webapp/chat/views.py", "GET stream: checks before streaming"),
    ("stream.<locals>.events ", "GET stream: events (follow + render)"),
    ("follow (webapp/replies/streaming.py", "GET stream: follow"),
    ("LiveReply.snapshot ", "GET stream: snapshot (markdown)"),
    ("render_template ", "GET stream: templates"),
]

LAYERS = [
    ("sqlalchemy/", "SQLAlchemy + sqlite3"), ("sqlite3/", "SQLAlchemy + sqlite3"),
    ("jinja2/", "Jinja templates"), (".html)", "Jinja templates"),
    ("markdown_it/", "markdown + nh3"), ("rendering.py", "markdown + nh3"),
    ("nh3", "markdown + nh3"), ("json/", "json"),
    ("requests/", "requests + urllib3 + http.client"), ("urllib3/", "requests + urllib3 + http.client"),
    ("http/client.py", "requests + urllib3 + http.client"),
    ("_socketcommon.py", "socket I/O (gevent)"), ("_socket3.py", "socket I/O (gevent)"),
    ("socket.py", "socket I/O (gevent)"), ("gunicorn/", "gunicorn"),
    ("flask/", "Flask + Werkzeug"), ("werkzeug/", "Flask + Werkzeug"),
    ("flask_sqlalchemy/", "SQLAlchemy + sqlite3"), ("htmx_flask/", "Flask + Werkzeug"),
    ("gevent/", "gevent"), ("greenlet", "gevent"), ("webapp/", "app code (webapp/)"),
    ("threading.py", "threading (gevent-patched)"), ("logging/", "logging"),
]


def load(path: str):
    """(frames root first, count) for each stack in a raw py-spy file."""
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip()
        if not line or " " not in line:
            continue
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():  # a wrapped line of a frame name, not a stack
            continue
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        yield frames, int(count)


def summarise(path: str, top: int = 12) -> str:
    activities: Counter = Counter()
    layers: Counter = Counter()
    leaves: Counter = Counter()
    busy = idle = 0
    for frames, count in load(path):
        if frames[-1].startswith(IDLE_LEAVES) or any(f.startswith(IDLE_FRAMES) for f in frames):
            idle += count
            continue
        busy += count
        activity = "other (gevent hub, timers, ...)"
        for frame in frames:  # root to leaf: the last match is the deepest
            for marker, name in ACTIVITIES:
                if frame.startswith(marker):
                    activity = name
        activities[activity] += count
        leaf = frames[-1]
        layer = next((name for marker, name in LAYERS if marker in leaf), "other")
        layers[layer] += count
        leaves[leaf] += count
    if not busy:
        return f"{path}: no busy samples"
    out = [f"profile {path}: {busy} busy samples ({idle} idle)"]
    out.append("  by activity (inclusive of everything below it):")
    out += [f"    {100 * c / busy:5.1f}%  {name}" for name, c in activities.most_common()]
    out.append("  by layer (where the CPU was actually spent, leaf frame):")
    out += [f"    {100 * c / busy:5.1f}%  {name}" for name, c in layers.most_common()]
    out.append(f"  top {top} leaf functions:")
    out += [f"    {100 * c / busy:5.1f}%  {name}" for name, c in leaves.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarise(arg))
