"""Comparisons: two or three models answering side by side, each column its own branch.

A comparison belongs to a conversation and holds its columns (model, position, leaf).
Its first turn is one user message (the fork) with one reply per model under it; each
later turn adds, under each column's leaf, the user's message and that model's reply.
Everything is an ordinary branch of the message tree, so share links, exports, search and
imports see a conversation like any other; the conversation's shown leaf follows the
first column until a column is picked ("Continue with this one"), which ends the
comparison and makes that column's branch the shown one. The generation of the replies
is generation.GenerationService's (start_compared_turn, retry_in_column).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from ..extensions import db
from . import tree
from .models import Comparison, ComparisonColumn, Conversation, Message, utcnow

MIN_MODELS, MAX_MODELS = 2, 3


class NotComparable(ValueError):
    """The models asked for cannot be compared (too few, too many, repeated)."""


class Ended(Exception):
    """The comparison ended (picked or ended in another tab) before a turn was saved."""


def check_models(models: Sequence[str]) -> list[str]:
    """The models to compare, in order, each once; NotComparable unless 2 or 3."""
    unique = list(dict.fromkeys(model for model in models if model))
    if not MIN_MODELS <= len(unique) <= MAX_MODELS:
        raise NotComparable(f"Pick {MIN_MODELS} or {MAX_MODELS} different models to compare "
                            f"({len(unique)} picked).")
    return unique


def open_comparison(conversation: Conversation) -> Comparison | None:
    """The conversation's comparison still going on, if any (no query when there is
    none)."""
    if conversation.comparison_id is None:
        return None
    return tree.session_of(conversation).get(Comparison, conversation.comparison_id)


def start(conversation: Conversation, models: Sequence[str], blind: bool) -> Comparison:
    """Open a comparison of `models` (checked) in the conversation, ending any other; its
    first message is sent with GenerationService.start_compared_turn. The caller commits."""
    if (previous := open_comparison(conversation)) is not None:
        end(conversation, previous)
    comparison = Comparison(conversation=conversation, blind=blind, columns=[
        ComparisonColumn(position=position, model=model)
        for position, model in enumerate(check_models(models))])
    session = tree.session_of(conversation)
    session.add(comparison)
    session.flush()
    conversation.comparison_id = comparison.id
    conversation.model = comparison.columns[0].model
    return comparison


def move_column_leaf(conversation: Conversation, column: ComparisonColumn,
                     reply: Message) -> None:
    """A column's thread now ends at `reply`; the first column's is the shown branch."""
    column.leaf_id = reply.id
    if column.position == 0:
        tree.move_leaf(conversation, reply)


def hold_open(session: Session, comparison: Comparison) -> None:
    """Keep the comparison open for the turn this transaction saves, or raise Ended.

    A conditional write on the conversation row: a pick or End that committed first makes
    it match nothing, and one that comes later waits for this transaction (PostgreSQL's
    row lock, SQLite's write lock).
    """
    held = session.execute(
        update(Conversation)
        .where(Conversation.id == comparison.conversation_id,
               Conversation.comparison_id == comparison.id)
        .values(updated_at=utcnow()))
    if held.rowcount == 0:
        raise Ended()


def pick(conversation: Conversation, comparison: Comparison, column: ComparisonColumn) -> None:
    """Continue with this column: its branch becomes the shown one and its model the
    conversation's; the comparison ends (the other columns stay versions of the fork's
    replies). The pick is kept (wins). The caller commits."""
    comparison.picked_position = column.position
    if column.leaf_id is not None:
        conversation.current_leaf_id = column.leaf_id
    conversation.model = column.model
    end(conversation, comparison)


def end(conversation: Conversation, comparison: Comparison) -> None:
    """Stop comparing; the shown branch stays as it is. The caller commits."""
    comparison.ended_at = utcnow()
    conversation.comparison_id = None
    conversation.updated_at = utcnow()


def column_at(comparison: Comparison, position: int) -> ComparisonColumn | None:
    """The comparison's column at `position`, or None."""
    return next((column for column in comparison.columns if column.position == position),
                None)


def column_of(conversation: Conversation, message: Message) -> ComparisonColumn | None:
    """The column of the conversation's open comparison whose thread ends at `message`."""
    comparison = open_comparison(conversation)
    if comparison is None or comparison.fork_id is None:
        return None
    return next((column for column in comparison.columns if column.leaf_id == message.id),
                None)


@dataclass(frozen=True)
class ColumnView:
    """One column as the page shows it: the column and its thread below the fork."""

    column: ComparisonColumn
    branch: tree.Branch

    @property
    def reply(self) -> Message | None:
        """The column's latest reply."""
        return next((m for m in reversed(self.branch.messages) if m.role == "assistant"),
                    None)


@dataclass(frozen=True)
class Board:
    """An open comparison as the page shows it: the columns' threads side by side."""

    comparison: Comparison
    columns: list[ColumnView]

    @property
    def active(self) -> bool:
        """Some column is still writing."""
        return any(view.reply is not None and view.reply.is_active for view in self.columns)


def board(conversation: Conversation) -> Board | None:
    """The open comparison with each column's thread, or None; a comparison not sent yet
    has empty columns."""
    comparison = open_comparison(conversation)
    if comparison is None:
        return None
    views = []
    for column in comparison.columns:
        branch = tree.Branch([], {})
        if comparison.fork_id is not None and column.leaf_id is not None:
            branch = tree.branch_after(conversation, column.leaf_id, comparison.fork_id)
        views.append(ColumnView(column, branch))
    return Board(comparison, views)


@dataclass(frozen=True)
class Wins:
    """A model's record in an owner's blind comparisons."""

    model: str
    wins: int
    compared: int


def wins(owner_id: str | None) -> list[Wins]:
    """Each model's wins in the owner's decided blind comparisons, most wins first: one
    query."""
    won = ComparisonColumn.position == Comparison.picked_position
    rows = db.session.execute(
        select(ComparisonColumn.model, func.count().filter(won), func.count())
        .join(Comparison, and_(Comparison.id == ComparisonColumn.comparison_id,
                               Comparison.blind.is_(True),
                               Comparison.picked_position.is_not(None)))
        .join(Conversation, Conversation.id == Comparison.conversation_id)
        .where(Conversation.owner_id == owner_id)
        .group_by(ComparisonColumn.model)).all()
    return sorted((Wins(model, won_count, compared) for model, won_count, compared in rows),
                  key=lambda row: (-row.wins, row.model))
