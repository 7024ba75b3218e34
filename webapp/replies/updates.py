"""The events that show a reply while it is written: all of it once, then what changed.

A stream's first event, "update", replaces the reply's body with chat/_reply_body.html,
the template the page itself renders. Each later event, "delta", holds only what changed
since the previous one, as htmx out-of-band swaps into parts of that body, whose ids both
the template and this module take from part_id():

* the reasoning's new text, escaped, appended to the thinking text;
* finished Markdown blocks, inserted once before the unfinished tail;
* the tail's new HTML, in place of the old.

So an event costs what the unfinished block costs, whatever the length of the reply, and
no more than STREAMING_TAIL_CHARS of it: a longer block goes on as escaped plain text,
each event carrying only what it gained (rendering.StreamingRenderer). The
HTML comes from the snapshots of LiveReply, rendered once per change and shared by every
follower. When the body's shape changes (a notice appears or goes, the first reasoning
arrives) or the snapshot is not a continuation of the previous one, "update" is sent again.
"""

from __future__ import annotations

import re

from flask import render_template
from markupsafe import escape

from .live import Snapshot


def part_id(message, part: str) -> str:
    """The id of a part of a reply being written ("thinking", "tail")."""
    return f"m-{message.id}-{part}"


# The line ends of the event stream format; str.splitlines would also split on U+2028,
# form feeds and the like, which the browser would then receive as newlines.
_LINE_END = re.compile(r"\r\n|\r|\n")


def sse_event(event: str, data: str) -> str:
    """One server-sent event; each line of data gets its own data field."""
    lines = "".join(f"data: {line}\n" for line in _LINE_END.split(data))
    return f"event: {event}\n{lines}\n"


class ReplyEvents:
    """The events of one stream (one follower); remembers what it sent."""

    def __init__(self) -> None:
        self._sent: Snapshot | None = None
        self._thinking_target = self._tail_target = ""

    def event(self, snapshot: Snapshot) -> str | None:
        """The event that brings the browser to snapshot, or None when nothing shows."""
        sent, self._sent = self._sent, snapshot
        if sent is None or not _continues(sent, snapshot):
            self._thinking_target = "#" + part_id(snapshot, "thinking")
            self._tail_target = "#" + part_id(snapshot, "tail")
            return sse_event("update", render_template("chat/_reply_body.html",
                                                       message=snapshot))
        swaps = []
        if len(snapshot.reasoning) > len(sent.reasoning):
            swaps.append(_oob("beforeend", self._thinking_target,
                              escape(snapshot.reasoning[len(sent.reasoning):])))
        if snapshot.block_count > sent.block_count:
            swaps.append(_oob("beforebegin", self._tail_target,
                              "".join(snapshot.blocks[sent.block_count:snapshot.block_count])))
        if snapshot.tail_html != sent.tail_html:
            swaps.append(_oob("innerHTML", self._tail_target, snapshot.tail_html))
        return sse_event("delta", "".join(swaps)) if swaps else None


def _continues(sent: Snapshot, snapshot: Snapshot) -> bool:
    """True when snapshot only adds to sent, in parts the browser already has."""
    return (snapshot.blocks is sent.blocks and snapshot.block_count >= sent.block_count
            and snapshot.notice == sent.notice
            and bool(snapshot.reasoning) == bool(sent.reasoning)
            and snapshot.reasoning.startswith(sent.reasoning))


def _oob(swap: str, target: str, html: str) -> str:
    return f'<div hx-swap-oob="{swap}:{target}">{html}</div>'
