"""CSRF: every POST form carries the token, every POST route refuses a request without it."""

from __future__ import annotations

import re

import pytest

from tests.conftest import messages_of, share_link

POST_FORM = re.compile(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", re.S | re.I)
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def protected(make_app):
    return make_app(WTF_CSRF_ENABLED=True, ACCESS_PASSWORD="")


def token_of(html: str) -> str:
    return TOKEN.search(html).group(1)


def start(client) -> tuple[str, str]:
    """A finished conversation made through the page's own form; its URL and a token."""
    token = token_of(client.get("/").get_data(as_text=True))
    response = client.post("/c", data={"content": "Hello", "csrf_token": token})
    assert response.status_code == 303
    return response.headers["Location"].split("#")[0], token


def test_every_post_form_on_every_page_carries_the_token(protected, make_app):
    client = protected.test_client()
    url, token = start(client)
    client.post(f"{url}/share", data={"csrf_token": token})
    reply = messages_of(protected)[-1].id
    link = share_link(client, url, csrf_token=token)
    client.post("/devices", data={"csrf_token": token})
    compared = client.post("/c", data={"content": "Both", "models": ["m-a", "m-b"],
                                       "csrf_token": token}).headers["Location"]
    pages = ["/", url, f"{url}/delete", f"{url}/share", "/shares", "/conversations",
             f"{url}/messages/{reply}", f"{link}/continue", "/devices", "/import",
             compared.split("#")[0]]
    forms = []
    for page in pages:
        html = client.get(page).get_data(as_text=True)
        forms += [(page, form) for form in POST_FORM.findall(html)]
    gated = make_app(WTF_CSRF_ENABLED=True, ACCESS_PASSWORD="secret").test_client()
    forms += [("/access", form) for form in POST_FORM.findall(
        gated.get("/access").get_data(as_text=True))]
    assert len(forms) >= 10
    for page, form in forms:
        assert 'name="csrf_token"' in form, (page, form[:300])


def test_every_post_route_refuses_a_request_without_the_token(protected):
    client = protected.test_client()
    url, token = start(client)
    link = share_link(client, url, csrf_token=token)
    values = {"public_id": url.rsplit("/", 1)[1], "message_id": messages_of(protected)[-1].id,
              "token": link.rsplit("/", 1)[1], "position": 0}
    adapter = protected.url_map.bind("localhost")
    checked = 0
    for rule in protected.url_map.iter_rules():
        if "POST" not in rule.methods:
            continue
        path = adapter.build(rule.endpoint, {name: values[name] for name in rule.arguments})
        for headers in ({}, {"HX-Request": "true"}):
            response = client.post(path, data={"content": "x", "title": "x"}, headers=headers)
            assert response.status_code == 400, (path, response.status_code)
            assert "Reload the page, then try again." in response.get_data(as_text=True)
        checked += 1
    assert checked >= 10
    assert [m.content for m in messages_of(protected) if m.role == "user"] == ["Hello"]


def test_htmx_refusal_is_shown_next_to_the_form(protected):
    client = protected.test_client()
    url, _ = start(client)
    response = client.post(f"{url}/messages", data={"content": "No token"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 400 and response.headers["HX-Retarget"] == "#form-error"
    assert "<nav" not in response.get_data(as_text=True)


def test_htmx_may_send_the_token_in_a_header(protected):
    client = protected.test_client()
    url, token = start(client)
    response = client.post(f"{url}/delete",
                           headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/"


def test_a_token_from_another_browser_is_refused(protected):
    _, token = start(protected.test_client())
    other = protected.test_client()
    other.get("/")
    assert other.post("/c", data={"content": "Hi", "csrf_token": token}).status_code == 400


def test_a_shared_page_sets_no_cookie_and_continue_asks_with_a_token(protected):
    owner = protected.test_client()
    url, token = start(owner)
    link = share_link(owner, url, csrf_token=token)
    viewer = protected.test_client()
    response = viewer.get(link)
    assert "Set-Cookie" not in response.headers
    assert "csrf_token" not in response.get_data(as_text=True)
    assert viewer.post(f"{link}/continue").status_code == 400
    viewer_token = token_of(viewer.get(f"{link}/continue").get_data(as_text=True))
    response = viewer.post(f"{link}/continue", data={"csrf_token": viewer_token})
    assert response.status_code == 303 and response.headers["Location"].startswith("/c/")
