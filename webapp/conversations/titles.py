"""Short conversation titles, written by the model after a conversation's first reply.

A small non-streaming request runs in the generation thread once the reply is saved, so
it never delays or fails the reply: the app factory registers `after_first_reply(client)`
as one of the generation service's after-completion hooks when TITLE_GENERATION is on.
On any error the default title stays (the first words of the first message), and a title
the person chose is never overwritten.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..upstream import llm
from . import tree
from .models import Conversation, Message, Status
from .text import clean_text, title_from

log = logging.getLogger(__name__)

TITLE_PROMPT = ("Write a title of 3 to 6 words for a conversation that starts with the "
                "message below. Answer with the title only, without quotes or a final "
                "full stop.\n\nMessage:\n{message}")
TITLE_MAX_TOKENS = 16
TITLE_WORDS = 8
TITLE_CHARS = 60
MESSAGE_CHARS = 2000  # of the first message, enough to name the topic

_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL)
_QUOTES = re.compile(r"[\"“”„«»`*_#]")
_LABEL = re.compile(r"^\s*title\s*:\s*", re.IGNORECASE)


def after_first_reply(client: llm.LLMClient) -> Callable[[Session, int], None]:
    """The after-completion hook that titles conversations through this client."""

    def title_after_first_reply(session: Session, message_id: int) -> None:
        """Title the conversation if this reply is its first complete one; never raises."""
        try:
            _write_title(client, session, message_id)
        except llm.LLMError as error:
            log.warning("no title for the conversation of message %s: %s (%s)", message_id,
                        error.user_message, error.log_text())
        except Exception:
            log.exception("titling the conversation of message %s failed", message_id)
        finally:
            session.rollback()

    return title_after_first_reply


# The conversation of reply :message_id when that reply is complete, the model has not
# been asked for a title yet and the title is not the person's own.
_UNTITLED_AFTER_REPLY = (
    select(Conversation)
    .join(Message, Message.conversation_id == Conversation.id)
    .where(Message.id == bindparam("message_id"), Message.status == Status.COMPLETE,
           Conversation.title_asked.is_(False), Conversation.title_is_custom.is_(False))
    .execution_options(populate_existing=True))
# Claims the one title request of a conversation: of replies completing at once (a
# comparison's columns, in threads of their own), only the first write matches.
_CLAIM_TITLE = (update(Conversation)
                .where(Conversation.id == bindparam("b_id"),
                       Conversation.title_asked.is_(False))
                .values(title_asked=True).execution_options(synchronize_session=False))


def clean_title(text: str) -> str:
    """The title in a model's answer: one line, no quotes, labels or final punctuation."""
    text = _THINKING.sub("", text)
    if "<think>" in text:  # the thinking was cut off: there is no title
        return ""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = _QUOTES.sub("", _LABEL.sub("", clean_text(line)))
    line = line.strip(" '‘’").rstrip(".!?:;,").strip(" '‘’")
    return title_from(line, words=TITLE_WORDS, limit=TITLE_CHARS)


def _write_title(client: llm.LLMClient, session: Session, message_id: int) -> None:
    conversation = session.scalar(_UNTITLED_AFTER_REPLY, {"message_id": message_id})
    if conversation is None:
        return
    if session.execute(_CLAIM_TITLE, {"b_id": conversation.id}).rowcount != 1:
        return  # another reply's hook asked first
    first_question = next((m for m in tree.shown_branch(conversation).messages
                           if m.role == "user"), None)
    if first_question is None:
        return
    prompt = TITLE_PROMPT.format(message=first_question.content[:MESSAGE_CHARS])
    conversation_id, model = conversation.id, conversation.model
    session.commit()  # no transaction held open while waiting on the network
    completion = client.complete(model, [{"role": "user", "content": prompt}],
                                 max_tokens=TITLE_MAX_TOKENS)
    title = clean_title(completion.content)
    if not title:
        log.info("the model gave no usable title for conversation %s", conversation_id)
        return
    session.execute(update(Conversation).where(
        Conversation.id == conversation_id, Conversation.title_is_custom.is_(False)
    ).values(title=title).execution_options(synchronize_session=False))
    session.commit()
