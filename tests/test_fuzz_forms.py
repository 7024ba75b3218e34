"""Arbitrary text at every form and query (hypothesis): never a 500, never live markup.

The text mixes anything Unicode has (NUL and other control characters, right-to-left
marks, lone combining characters) with snippets of hostile HTML and Markdown; whatever
comes back, as a page or an htmx fragment, must show those snippets escaped.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import share_link, start_chat

HOSTILE = ["<script>alert(1)</script>", '<img src=x onerror="alert(1)">',
           "<svg/onload=alert(1)>", "[x](javascript:alert(1))", '"><b id=injected>',
           "</textarea><i id=injected>", "{{ 7*7 }}", "\x00", "\u202e", "%00", "&amp;"]
LIVE_MARKUP = re.compile(r"<script>alert|<img src=x|<svg/onload|<b id=injected|"
                         r"<i id=injected|href=\"javascript:", re.I)

texts = st.lists(st.one_of(st.text(max_size=30), st.sampled_from(HOSTILE)),
                 max_size=6).map("".join)
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def check(response) -> str:
    """The body of a response that is neither a server error nor showing live markup."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, body[:1000]
    assert not LIVE_MARKUP.search(body), LIVE_MARKUP.search(body).group(0)
    return body


@pytest.fixture
def chat(client):
    """A conversation with one finished turn, and its URL."""
    return client, start_chat(client, "Hello")


@FUZZ
@given(content=texts, system_prompt=texts, model=texts, htmx=st.booleans())
def test_the_new_chat_form(client, content, system_prompt, model, htmx):
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post("/c", data={"content": content, "system_prompt": system_prompt,
                                       "model": model}, headers=headers)
    check(response)
    location = response.headers.get("HX-Redirect") or response.headers.get("Location")
    if location:
        check(client.get(location.split("#")[0]))


@FUZZ
@given(content=texts)
def test_the_message_form(chat, content):
    client, url = chat
    check(client.post(f"{url}/messages", data={"content": content}))
    check(client.get(url))


@FUZZ
@given(content=texts)
def test_the_edit_form(chat, content):
    client, url = chat
    first_user_message = re.search(r'id="m-(\d+)"[^>]*data-status="complete"',
                                   client.get(url).get_data(as_text=True)).group(1)
    check(client.post(f"{url}/messages/{first_user_message}/edit",
                      data={"content": content}))
    check(client.get(url))


@FUZZ
@given(title=texts, model=texts, htmx=st.booleans())
def test_the_rename_and_model_forms(chat, title, model, htmx):
    client, url = chat
    headers = {"HX-Request": "true"} if htmx else {}
    check(client.post(f"{url}/rename", data={"title": title}, headers=headers))
    check(client.post(f"{url}/model", data={"model": model}, headers=headers))
    check(client.get(url))
    check(client.get("/"))


@FUZZ
@given(query=texts, cursor=texts)
def test_search_and_the_sidebar_cursor(chat, query, cursor):
    client, _ = chat
    check(client.get("/search", query_string={"q": query}))
    check(client.get("/search", query_string={"q": query}, headers={"HX-Request": "true"}))
    check(client.get("/conversations", query_string={"before": cursor}))


@FUZZ
@given(flag=texts, back=texts)
def test_the_share_forms(chat, flag, back):
    client, url = chat
    check(client.post(f"{url}/share", data={"include_system_prompt": flag, "back": back}))
    link = share_link(client, url)
    check(client.get(link))
    check(client.post(f"{link}/continue"))


@FUZZ
@given(segment=texts)
def test_ids_and_tokens_in_urls(chat, segment):
    client, url = chat
    for path in ("/c/{}", "/s/{}", "/c/{}/share", "/c/{}/export.md"):
        check(client.get(path.format(segment.replace("/", "").replace("?", "")
                                     .replace("#", ""))))


@FUZZ
@given(password=texts, target=texts)
def test_the_access_password_form(make_app, password, target):
    client = make_app(ACCESS_PASSWORD="right one").test_client()
    check(client.post("/access", data={"password": password, "next": target}))
    check(client.get("/access", query_string={"next": target}))
