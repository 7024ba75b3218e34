"""What the browser tests do as a person would: find things by role and name, send, read replies."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import ARTIFACTS, missing

SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_SCRIPT = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


def message_box(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Message")


TOUCH_SCREEN = "matchMedia('(hover: none) and (pointer: coarse)').matches"


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a person does (on a touch screen, tap Send)."""
    box = message_box(page)
    box.fill(text)
    if page.evaluate(TOUCH_SCREEN):
        page.get_by_role("button", name="Send").tap()
    else:
        box.press("Enter")


def open_menu(page: Page) -> Locator:
    """Open the conversation's "⋯" menu and return it."""
    page.get_by_role("button", name="More actions").click()
    menu = page.locator("#conv-menu")
    expect(menu).to_be_visible()
    return menu


def menu_item(page: Page, name: str) -> Locator:
    """An item of the conversation's "⋯" menu (Rename, Share, Export…, Delete), the menu open."""
    return open_menu(page).get_by_role("link", name=name, exact=True).or_(
        page.locator("#conv-menu").get_by_role("button", name=name, exact=True))


def replies(page: Page) -> Locator:
    """The assistant's messages, oldest first."""
    return page.get_by_role("article").filter(
        has=page.get_by_role("heading", name=re.compile(r"^Assistant")))


def user_messages(page: Page) -> Locator:
    """The messages the person sent, oldest first."""
    return page.get_by_role("article").filter(has=page.get_by_role("heading", name="You"))


def finished_reply(page: Page, status: str = "complete", timeout_ms: float | None = None
                   ) -> Locator:
    """The last reply, once it has finished with this status (within timeout_ms, else
    Playwright's default wait)."""
    reply = replies(page).last
    expect(reply).to_have_attribute("data-status", status, timeout=timeout_ms)
    return reply


def screenshot(page: Page, name: str) -> Path:
    """Save what the screen shows as test-artifacts/screenshots/NAME.png."""
    path = SCREENSHOTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), caret="initial")  # hiding it would inject a style the CSP refuses
    return path


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of these impacts on the page, one readable line each."""
    if not AXE_SCRIPT.exists():
        missing(f"axe-core is not installed at {AXE_SCRIPT}")
    page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['impact']}: {v['id']}: {v['help']} "
            f"({', '.join(str(node['target']) for node in v['nodes'][:3])})"
            for v in result["violations"] if v["impact"] in impacts]
