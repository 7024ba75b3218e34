"""Generation as a service: a reply is generated, stopped and titled from a plain thread,
with no Flask request or app context, and after-completion hooks never touch the reply."""

from __future__ import annotations

import threading

import pytest
from flask import has_app_context

from harness.fake_upstream import Reply
from tests.conftest import messages_of, wait_for_generations, wait_until
from webapp.conversations.models import Conversation, Message, Status
from webapp.extensions import db

TOKENS = ["Hello ", "from ", "a ", "thread."]


def in_plain_thread(work):
    """Run work() in a new thread (no app context there); its result, or its error."""
    outcome: dict = {}

    def run() -> None:
        assert not has_app_context()
        try:
            outcome["result"] = work()
        except BaseException as error:  # handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=15)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def start_in_thread(app, content: str, wait: bool = True) -> int:
    """Start a conversation with one message through the service, from a plain thread;
    the reply's id (waiting until it is finished unless told not to)."""
    service = app.extensions["generation"]

    def work() -> int:
        with service.sessions() as session:
            conversation = Conversation(owner_id="operator", model="test-model",
                                        title="From a thread")
            session.add(conversation)
            _, reply = service.start_turn(conversation, content)
            if wait:
                service.wait_until_finished(reply.id, timeout=10)
            return reply.id

    return in_plain_thread(work)


def row(app, message_id: int):
    return next(message for message in messages_of(app) if message.id == message_id)


def test_a_reply_is_generated_and_saved_with_no_app_context(app, upstream):
    upstream.enqueue(Reply(tokens=TOKENS))
    reply_id = start_in_thread(app, "Say hello")
    wait_for_generations(app)
    reply = row(app, reply_id)
    assert (reply.status, reply.content) == (Status.COMPLETE, "Hello from a thread.")
    assert upstream.sent_messages() == [{"role": "user", "content": "Say hello"}]


def test_a_reply_started_with_no_app_context_stops_from_there_too(app, upstream):
    upstream.enqueue(Reply(tokens=[f"w{i} " for i in range(200)], token_delay=0.02))
    reply_id = start_in_thread(app, "Count", wait=False)
    service = app.extensions["generation"]
    wait_until(lambda: "w3" in row(app, reply_id).content, timeout=5)

    def stop() -> None:
        with service.sessions() as session:
            service.request_stop(session.get(Message, reply_id))

    in_plain_thread(stop)
    wait_for_generations(app)
    stopped = row(app, reply_id)
    assert stopped.status == Status.STOPPED and "w199" not in stopped.content


def test_the_title_hook_runs_with_no_app_context(make_app, upstream):
    app = make_app(TITLE_GENERATION=True)
    upstream.enqueue(Reply(tokens=TOKENS), Reply("Greetings From A Thread"))
    start_in_thread(app, "Say hello")
    wait_for_generations(app)
    with app.app_context():
        assert db.session.scalars(db.select(Conversation.title)).one() == \
            "Greetings From A Thread"


@pytest.mark.parametrize("fails", [False, True])
def test_after_completion_hooks_get_the_saved_reply_and_never_change_it(app, upstream,
                                                                        fails):
    seen = []

    def hook(session, message_id: int) -> None:
        seen.append(session.get(Message, message_id).content)
        if fails:
            raise RuntimeError("a broken hook")

    app.extensions["generation"].after_completion.append(hook)
    upstream.enqueue(Reply(tokens=TOKENS))
    reply_id = start_in_thread(app, "Say hello")
    wait_for_generations(app)
    assert seen == ["Hello from a thread."]
    assert row(app, reply_id).status == Status.COMPLETE
