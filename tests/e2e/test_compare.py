"""Comparing models as a person does: columns on a desktop, tabs on a phone, an error in
one column, Stop, Regenerate one, continue with one; blind and without JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from harness.fake_upstream import Reply
from tests.e2e.conftest import PHONE
from tests.e2e.helpers import axe_violations, message_box, screenshot, send

MODELS = ["Llama-3.3-70B-Instruct", "gpt-oss-120b", "Qwen3-8B"]
ANSWER = "## {model}\n\n| city | people |\n| --- | --- |\n| Rome | 2.8 M |\n\n```python\nprint('{model}')\n```\n"


def column(page: Page, name: str):
    return page.get_by_role("region", name=name, exact=True)


def shoot(page: Page, name: str) -> None:
    """Screenshots of what the screen shows, light then dark."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        screenshot(page, f"{name}-{scheme}")
    page.emulate_media(color_scheme="light")


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_compare_three_models_side_by_side(new_context, upstream, device):
    phone = device == "phone"
    options = {"viewport": PHONE, "is_mobile": True, "has_touch": True} if phone else {}
    # bypass_csp: the page's Content-Security-Policy would refuse the injected axe script.
    page = new_context(bypass_csp=True, **options).new_page()
    slow = {"on": False}

    def by_model(body):
        model = body["model"]
        if model == "gpt-oss-120b" and not slow["on"]:
            return Reply(status=429, retry_after="600")
        if slow["on"]:
            return Reply(tokens=[f"{model[:4]}{i} " for i in range(300)], token_delay=0.03)
        return Reply(ANSWER.format(model=model), token_delay=0.01)

    upstream.default_reply = by_model
    page.goto("/new?models=" + ",".join(MODELS))
    expect(page.locator(".compare-note")).to_contain_text("your message goes to each")
    page.get_by_role("button", name="Compare models").click()
    shoot(page, f"{device}-compare-picker")
    page.keyboard.press("Escape")
    send(page, "Which city is biggest?")

    for model in MODELS:
        expect(column(page, model)).to_be_attached()
    llama = column(page, MODELS[0])
    expect(llama.get_by_role("table")).to_be_visible()
    expect(llama).to_contain_text(re.compile(r"s to first token · \d+ tokens/s · \d+ tokens"))
    expect(column(page, "gpt-oss-120b")).to_contain_text("try again in about 10 minutes")
    expect(column(page, "Qwen3-8B").locator("article[data-status=complete]")).to_have_count(1)
    if phone:
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.get_by_role("link", name="Qwen3-8B").tap()
        expect(column(page, "Qwen3-8B").get_by_role("table")).to_be_in_viewport()
        shoot(page, f"{device}-compare-tab")
        page.get_by_role("link", name=MODELS[0]).tap()
    shoot(page, f"{device}-compare-done")
    assert axe_violations(page) == []

    upstream.default_reply = lambda body: Reply(f"{body['model']} tries again")
    column(page, "gpt-oss-120b").get_by_role("button", name="Retry gpt-oss-120b").click()
    expect(column(page, "gpt-oss-120b")).to_contain_text("gpt-oss-120b tries again")

    upstream.default_reply = by_model
    slow["on"] = True
    send(page, "Now count slowly")
    for prefix, model in zip(("Llam", "gpt-", "Qwen"), MODELS):
        expect(column(page, model)).to_contain_text(f"{prefix}20")
    shoot(page, f"{device}-compare-streaming")
    page.get_by_role("button", name="Stop", exact=True).click()
    for model in MODELS:
        expect(column(page, model).locator("article[data-status=stopped]")).to_have_count(1)

    column(page, "Qwen3-8B").get_by_role("button", name="Continue with this one").click()
    expect(page.get_by_role("region", name="Qwen3-8B")).to_have_count(0)
    # The others stay versions at the fork (with gpt-oss-120b's retry, 4 replies).
    expect(page.locator(".version-count").first).to_have_text(re.compile(r"^\s*\d / 4\s*$"))
    expect(page.get_by_role("combobox", name="Model")).to_have_value("Qwen3-8B")
    shoot(page, f"{device}-compare-continued")


def test_blind_comparison_without_javascript(new_context, upstream):
    page = new_context(java_script_enabled=False).new_page()
    facts = {"Llama-3.3-70B-Instruct": "Fact one", "Qwen3-8B": "Fact two"}
    upstream.default_reply = lambda body: Reply(facts[body["model"]])
    page.goto("/new?models=Llama-3.3-70B-Instruct,Qwen3-8B&blind=1")
    message_box(page).fill("Tell me a fact")
    page.get_by_role("button", name="Send").click()  # the server waits for both

    expect(page).to_have_url(re.compile(r"/c/[\w-]+#columns$"))
    expect(column(page, "A")).to_contain_text("Fact")
    expect(column(page, "B")).to_contain_text("Fact")
    expect(page.get_by_text("Llama-3.3-70B-Instruct")).to_have_count(0)
    shoot(page, "desktop-compare-blind")
    winner = "Qwen3-8B" if "Fact two" in column(page, "B").inner_text() \
        else "Llama-3.3-70B-Instruct"
    page.get_by_role("button", name="B is better").click()
    expect(page.locator(".msg.assistant .msg-role").last).to_contain_text(winner)
    page.goto("/compare/wins")
    expect(page.get_by_role("row").filter(has_text=winner)).to_contain_text("1")
    screenshot(page, "desktop-compare-wins-light")
