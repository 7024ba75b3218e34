"""What replies cost: per conversation and per month for an owner, from stored usage and prices.

A reply's cost is its prompt_tokens times its input_price plus its completion_tokens
times its output_price, both stored with it (webapp/replies/generation.py); replies without a
price or usage count for nothing and are not guessed. Sums are per currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from ..extensions import db
from .models import Conversation, Message, utcnow

_COST = (func.coalesce(Message.prompt_tokens, 0) * Message.input_price
         + func.coalesce(Message.completion_tokens, 0) * Message.output_price)
_PRICED = (Message.price_currency.is_not(None), Message.total_tokens.is_not(None))


@dataclass(frozen=True)
class Amount:
    """A sum of money in a currency."""

    value: float
    currency: str

    def __str__(self) -> str:
        return money(self.value, self.currency)


def money(value: float, currency: str) -> str:
    """An amount for people: cents when it is that much, more digits for small ones."""
    digits = 2 if value >= 1 else 4
    return f"{value:,.{digits}f} {currency}"


@dataclass(frozen=True)
class Costs:
    """What a conversation (every version of its replies) and its owner's month cost."""

    conversation: list[Amount]
    month: list[Amount]


def month_start(now: datetime | None = None) -> datetime:
    """The first moment of the current month, UTC (as times are stored)."""
    return (now or utcnow()).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def costs(conversation: Conversation) -> Costs:
    """What the conversation cost, and what its owner's replies of this calendar month
    (UTC) cost, per currency: one query."""
    in_conversation = Message.conversation_id == conversation.id
    this_month = Message.created_at >= month_start()
    rows = db.session.execute(
        select(Message.price_currency,
               func.sum(case((in_conversation, _COST))), func.sum(case((this_month, _COST))))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.owner_id == conversation.owner_id, in_conversation | this_month,
               *_PRICED)
        .group_by(Message.price_currency).order_by(Message.price_currency)).all()
    return Costs([Amount(float(spent), currency) for currency, spent, _ in rows
                  if spent is not None],
                 [Amount(float(spent), currency) for currency, _, spent in rows
                  if spent is not None])
