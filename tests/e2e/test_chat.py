"""Chatting in a real browser: Enter sends, replies grow while they stream, Stop, reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.helpers import (finished_reply, message_box, replies, screenshot, send,
                               user_messages)

TABLE_AND_CODE = ("Here you are.\n\n| city | people |\n|---|---|\n| Rome | 2.7M |\n\n"
                  "```python\ndef greet():\n    return 'ciao'\n```\n")


def words(count: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i} " for i in range(count)]


def test_enter_sends_and_the_reply_grows_then_renders(page, upstream):
    upstream.enqueue(Reply(tokens=words(30) + [TABLE_AND_CODE], token_delay=0.08))
    page.goto("/")
    box = message_box(page)
    box.fill("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    expect(box).to_have_value("first line\nsecond line")
    box.press("Enter")

    reply = replies(page).last
    expect(reply).to_contain_text("w3")
    expect(reply).not_to_contain_text("w29")  # seen part-way: it grows while it streams
    screenshot(page, "desktop-streaming")
    reply = finished_reply(page)
    expect(reply).to_contain_text("w29")
    expect(reply.get_by_role("table")).to_contain_text("Rome")
    expect(reply.get_by_role("columnheader", name="people")).to_be_visible()
    code = reply.locator("pre code.language-python")
    expect(code).to_contain_text("def greet():")
    expect(code.locator("span").first).to_be_visible()  # highlighted by Pygments
    expect(user_messages(page).last).to_contain_text(re.compile(r"first line\s+second line"))
    expect(box).to_have_value("")
    assert upstream.sent_messages()[-1]["content"] == "first line\nsecond line"
    screenshot(page, "desktop-conversation")


def test_finished_blocks_and_reasoning_are_appended_once_while_streaming(page, upstream):
    # Twelve paragraphs: after the third shows up, nine more (about 5 s, room for a busy
    # machine) keep the final render, which replaces the whole message, away from the
    # checks in between.
    paragraphs = ["".join(words(8, f"p{n}w")).strip() for n in range(12)]
    tokens = [token for text in paragraphs for token in text.split(" ") + ["\n\n"]]
    reasoning = "Weighing every option with care."
    upstream.enqueue(Reply(tokens=[token if token == "\n\n" else token + " " for token in tokens],
                           reasoning=reasoning, token_delay=0.06))
    page.goto("/")
    send(page, "Twelve paragraphs, please")

    reply = replies(page).last
    first = reply.locator(".prose > p", has_text="p0w0")  # finished: out of the tail
    expect(first).to_have_count(1)
    first.evaluate("p => { p.dataset.kept = 'yes' }")
    # Later events came (the third paragraph is finished too: a state that lasts, where
    # the live tail's text is gone in a blink)...
    expect(reply.locator(".prose > p", has_text="p2w0")).to_have_count(1)
    # ...and left this paragraph alone (the final render,
    # which replaces the whole message, has not come: it would drop the mark).
    expect(reply.locator(".prose > p[data-kept]")).to_have_text(paragraphs[0])
    expect(reply.locator(".prose > p").nth(1)).to_have_text(paragraphs[1])
    expect(reply.locator(".prose p", has_text="p1w0")).to_have_count(1)
    expect(reply.locator(".thinking-text")).to_have_text(reasoning)

    reply = finished_reply(page, timeout_ms=15_000)  # the nine paragraphs still to come
    expect(reply.locator(".prose > p")).to_have_text(paragraphs)
    expect(reply.locator(".thinking-text")).to_have_text(reasoning)


def test_stop_keeps_the_text_so_far(page, upstream):
    upstream.enqueue(Reply(tokens=words(200), token_delay=0.05))
    page.goto("/")
    message_box(page).fill("Tell me a long story")
    page.get_by_role("button", name="Send").click()
    reply = replies(page).last
    expect(reply).to_contain_text("w3")
    page.get_by_role("button", name="Stop").click()

    reply = finished_reply(page, "stopped")
    expect(reply).to_contain_text("Stopped. The text so far is kept.")
    expect(reply).to_contain_text("w3")
    expect(reply).not_to_contain_text("w199")
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_a_reload_mid_reply_picks_it_up_and_it_finishes(page, upstream):
    upstream.enqueue(Reply(tokens=words(40), token_delay=0.06))
    page.goto("/")
    send(page, "Count slowly")
    expect(replies(page).last).to_contain_text("w2")
    page.reload()
    reply = finished_reply(page)
    expect(reply).to_contain_text(re.compile(r"w0 w1 w2 .* w39"))
    assert len(upstream.chat_requests) == 1  # the reload followed the reply, not a new one


def test_a_second_turn_replays_the_history(page, upstream):
    page.goto("/")
    send(page, "Hello")
    expect(finished_reply(page)).to_contain_text("You said: Hello")
    send(page, "Again")
    expect(replies(page)).to_have_count(2)
    expect(finished_reply(page)).to_contain_text("You said: Again")
    assert [m["role"] for m in upstream.sent_messages()] == ["user", "assistant", "user"]
