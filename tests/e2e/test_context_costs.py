"""The context meter and costs under the composer, and leaving older messages out, in a browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from harness.fake_upstream import Reply
from tests.e2e.conftest import PHONE
from tests.e2e.helpers import finished_reply, message_box, screenshot, send

WIDE = {"width": 1366, "height": 900}
MODEL = "Llama-3.3-70B-Instruct"


@pytest.fixture(scope="module")
def priced_server(start_server):
    """An app that knows the default model's price and context window from its settings."""
    return start_server("priced", MODEL_PRICES=f"{MODEL}=0.6/2.4 EUR",
                        MODEL_CONTEXT_WINDOWS=f"{MODEL}=2000")


@pytest.mark.parametrize("size, scheme", [(PHONE, "light"), (WIDE, "dark")],
                         ids=["phone-light", "wide-dark"])
def test_the_meter_and_costs_follow_the_replies_and_older_messages_can_be_left_out(
        new_context, upstream, priced_server, size, scheme):
    page = new_context(viewport=size, base_url=priced_server.url, color_scheme=scheme,
                       expected_console_errors=("status of 409",)).new_page()
    upstream.enqueue(Reply("A first answer.", usage={"prompt_tokens": 1900,
                                                     "completion_tokens": 20,
                                                     "total_tokens": 1920}))
    page.goto("/")
    send(page, "A first question")
    finished_reply(page)
    meter = page.locator("#context-meter")
    expect(meter).to_contain_text("Context: 1,920 of 2,000 tokens (96 %)")
    expect(meter).to_contain_text("This chat: 0.0012 EUR")
    expect(meter).to_contain_text("This month: 0.0012 EUR")
    expect(finished_reply(page)).to_contain_text("1900 prompt + 20 reply tokens · 0.0012 EUR")
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    name = f"{'phone' if size is PHONE else 'wide'}-{scheme}"
    screenshot(page, f"{name}-context-meter")
    page.get_by_role("button", name="Settings", exact=True).click()
    expect(page.get_by_label("Reasoning effort")).to_be_visible()
    expect(page.get_by_label("Don't substitute another model")).not_to_be_checked()
    screenshot(page, f"{name}-settings-effort-and-substitutes")
    page.keyboard.press("Escape")  # the panel closes

    question = "A longer second question. " * 14  # about 91 tokens more: over the window
    send(page, question)
    expect(page.get_by_role("alert")).to_contain_text("more than the model's 2,000")
    expect(message_box(page)).to_have_value(question)
    screenshot(page, f"{name}-context-overflow")

    upstream.enqueue(Reply("A short answer.", usage={"prompt_tokens": 95,
                                                     "completion_tokens": 5,
                                                     "total_tokens": 100}))
    page.get_by_role("button", name="Leave older messages out and send").click()
    finished_reply(page)
    marker = page.get_by_text("The messages above are no longer sent to the model")
    expect(marker).to_be_visible()
    expect(meter).to_contain_text("Context: 100 of 2,000 tokens (5 %)")
    assert [m["content"] for m in upstream.sent_messages(-1)] == [question]
    marker.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    screenshot(page, f"{name}-context-left-out")
