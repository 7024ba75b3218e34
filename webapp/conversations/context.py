"""How full a conversation's context is, and leaving older messages out to fit it.

The next request's tokens are the last reply's prompt_tokens plus completion_tokens (as
the server counted them) plus an estimate for what was added since; with no such reply
everything is estimated. A message's size is its text and its documents' text. The
estimate is about four characters a token. Messages older than the conversation's
first_sent_id (after the system prompt) are no longer sent (generation.history); the
marker is always a message of the user.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select

from ..extensions import db
from .models import Conversation, Document, Message
from .pricing import window_for
from .tree import BRANCH

CHARS_PER_TOKEN = 4
# Leaving older messages out keeps the request within this share of the window, so the
# reply has room too.
FIT_SHARE = 0.75
LEAVE_OUT = "leave-out"
SEND_ANYWAY = "send-anyway"

# The characters of a message's documents.
_DOCUMENT_CHARS = (select(func.coalesce(func.sum(Document.chars), 0))
                   .where(Document.message_id == Message.id).scalar_subquery())
# The shown branch's messages in order, without their text: role, length (with its
# documents'), usage, marker.
_BRANCH_SIZES = (select(Message.id, Message.role,
                        func.length(Message.content) + _DOCUMENT_CHARS,
                        Message.prompt_tokens, Message.completion_tokens,
                        Message.replayed_from_id)
                 .join(BRANCH, Message.id == BRANCH.c.id).order_by(Message.id))


def estimate_tokens(chars: int) -> int:
    """About how many tokens a text of `chars` characters is."""
    return math.ceil(chars / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Meter:
    """The next request's tokens against the model's context window (None: unknown)."""

    tokens: int
    estimated: bool
    window: int | None

    @property
    def percent(self) -> int | None:
        return None if not self.window else min(100, round(100 * self.tokens / self.window))

    @property
    def overflows(self) -> bool:
        return self.window is not None and self.tokens > self.window


@dataclass(frozen=True)
class _Row:
    id: int
    role: str
    chars: int
    prompt_tokens: int | None
    completion_tokens: int | None
    replayed_from_id: int | None


def _branch(leaf_id: int | None, messages: list[Message] | None = None) -> list[_Row]:
    """The sizes of the branch that ends at leaf_id: from its messages when loaded, else
    in one query."""
    if messages is not None:
        return [_Row(m.id, m.role, len(m.content) + sum(d.chars for d in m.documents),
                     m.prompt_tokens, m.completion_tokens, m.replayed_from_id)
                for m in messages]
    if leaf_id is None:
        return []
    return [_Row(*row) for row in db.session.execute(_BRANCH_SIZES, {"upto_id": leaf_id})]


def _sent(rows: list[_Row], marker: int | None) -> list[_Row]:
    """The rows replayed under the marker, as generation.history keeps them."""
    if marker is None:
        return rows
    kept = [row for row in rows if row.id >= marker or row.role == "system"]
    return kept if any(row.role == "user" for row in kept) else rows


def _last_counted(sent: list[_Row], marker: int | None) -> int | None:
    """The index of the newest reply the server counted, asked with the same marker."""
    return next((index for index in range(len(sent) - 1, -1, -1)
                 if sent[index].prompt_tokens is not None
                 and sent[index].completion_tokens is not None
                 and sent[index].replayed_from_id == marker), None)


def measure(conversation: Conversation, draft_chars: int = 0,
            messages: list[Message] | None = None) -> Meter:
    """The next request's tokens (with a draft of draft_chars) against the window;
    `messages` is the shown branch when it is already loaded."""
    return _measured(_branch(conversation.current_leaf_id, messages),
                     conversation.first_sent_id, conversation.model, draft_chars)


def overflowing_thread(conversation: Conversation, threads: Sequence[tuple[int | None, str]],
                       draft_chars: int) -> int | None:
    """The index of the first of these threads (leaf id, model: a comparison's columns)
    that a draft of draft_chars would take past its model's window; None when all fit."""
    for index, (leaf_id, model) in enumerate(threads):
        if window_for(model) is not None and _measured(
                _branch(leaf_id), conversation.first_sent_id, model, draft_chars).overflows:
            return index
    return None


def _measured(rows: list[_Row], marker: int | None, model: str, draft_chars: int) -> Meter:
    """The meter of a branch's rows replayed under `marker`, to `model`, with a draft."""
    sent = _sent(rows, marker)
    base = _last_counted(sent, marker)
    tokens, since = 0, sent
    if base is not None:
        tokens = sent[base].prompt_tokens + sent[base].completion_tokens
        since = sent[base + 1:]
    added = sum(estimate_tokens(row.chars) for row in since) + estimate_tokens(draft_chars)
    return Meter(tokens + added, base is None or added > 0, window_for(model))


def _tokens_per_estimate(sent: list[_Row], marker: int | None) -> float:
    """How many tokens the server counted per estimated one, from its last count (1
    without one): the estimate is only as good as four characters a token."""
    base = _last_counted(sent, marker)
    if base is None:
        return 1.0
    estimated = sum(estimate_tokens(row.chars) for row in sent[:base + 1])
    counted = sent[base].prompt_tokens + sent[base].completion_tokens
    return counted / estimated if estimated else 1.0


def check_before_send(conversation: Conversation, draft_chars: int,
                      choice: str) -> Meter | None:
    """The meter when sending a message of draft_chars (its text and its documents')
    would overflow the window and no choice was made; None when the send may go ahead
    (after leaving older messages out, if chosen)."""
    if choice == LEAVE_OUT:
        leave_out_older(conversation, draft_chars)
        return None
    if choice == SEND_ANYWAY or window_for(conversation.model) is None:
        return None  # nothing to check against: no branch read
    meter = measure(conversation, draft_chars)
    return meter if meter.overflows else None


def leave_out_older(conversation: Conversation, draft_chars: int) -> None:
    """Move the marker to the oldest message of the user from which the request (with a
    draft of draft_chars) fits FIT_SHARE of the window; past every message if none does.

    At least the oldest message still sent is left out. Estimated from the text's length,
    scaled by the server's last count; with no known window nothing is left out.
    """
    window = window_for(conversation.model)
    rows = _branch(conversation.current_leaf_id)
    if window is None or not rows:
        return
    sent = _sent(rows, conversation.first_sent_id)
    scale = _tokens_per_estimate(sent, conversation.first_sent_id)
    budget = window * FIT_SHARE - scale * (estimate_tokens(draft_chars) + sum(
        estimate_tokens(row.chars) for row in sent if row.role == "system"))
    turns = [row for row in sent if row.role != "system"]
    marker = rows[-1].id + 1  # past every message: only the new one is sent
    for index in range(len(turns) - 1, 0, -1):  # never the oldest one still sent
        budget -= scale * estimate_tokens(turns[index].chars)
        if budget < 0:
            break
        if turns[index].role == "user":
            marker = turns[index].id
    conversation.first_sent_id = marker


def send_all_again(conversation: Conversation) -> None:
    """Clear the marker: every message is sent again."""
    conversation.first_sent_id = None


def marker_on(conversation: Conversation, messages: list[Message]) -> int | None:
    """The marker as it applies to this branch: None when it leaves nothing out of it
    (or would leave out every message of the user, and so is not used)."""
    marker = conversation.first_sent_id
    if marker is None or not any(message.id < marker and message.role != "system"
                                 for message in messages):
        return None
    return marker if any(message.id >= marker and message.role == "user"
                         for message in messages) else None
