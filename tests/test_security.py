"""Security headers, cookie flags, proxy trust and the production secret key rule."""

from __future__ import annotations

import re

import pytest

from tests.conftest import messages_of, share_link, start_chat
from webapp import config

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER_OR_STYLE = re.compile(r"<[^>]+\s(on[a-z]+|style)\s*=", re.I)


def session_cookie(response) -> str:
    return next(value for value in response.headers.getlist("Set-Cookie")
                if value.startswith("session="))


def test_pages_and_fragments_carry_the_security_headers(client):
    url = start_chat(client)
    responses = [client.get("/"), client.get(url), client.get("/c/missing"),
                 client.get("/static/favicon.svg"),
                 client.post(f"{url}/rename", data={"title": "T"},
                             headers={"HX-Request": "true"})]
    for response in responses:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert not re.search(r"https?:|\*", csp)  # no third-party origin
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
        response.close()


def test_pages_have_no_inline_scripts_styles_or_handlers(client):
    url = start_chat(client, "| a | b |\n|--:|:-:|\n| 1 | 2 |")
    for page in (client.get("/").get_data(as_text=True),
                 client.get(url).get_data(as_text=True)):
        assert not INLINE_SCRIPT.search(page)
        assert not INLINE_HANDLER_OR_STYLE.search(page)
        assert "http://" not in page.replace('"http://localhost', "")


def test_links_in_messages_never_pass_the_referrer(client):
    url = start_chat(client, "See [the docs](https://example.com/docs)")
    page = client.get(url).get_data(as_text=True)
    assert 'href="https://example.com/docs" rel="noopener noreferrer nofollow"' in page


def test_the_session_cookie_is_httponly_lax_and_not_secure_over_http(client):
    cookie = session_cookie(client.get("/"))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_the_session_cookie_is_secure_over_https(client):
    assert "Secure" in session_cookie(client.get("/", base_url="https://localhost"))


def test_forwarded_proto_is_ignored_unless_the_proxy_is_trusted(make_app):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    untrusted = make_app().test_client().get("/", headers=headers)
    trusted = make_app(TRUST_PROXY=1).test_client().get("/", headers=headers)
    assert "Secure" not in session_cookie(untrusted)
    assert "Secure" in session_cookie(trusted)


def test_production_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    with pytest.raises(config.ConfigError, match="SECRET_KEY is not set"):
        config.load(str(tmp_path))
    assert not (tmp_path / "secret_key").exists()


def test_development_keeps_one_generated_key_under_instance(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("FLASK_DEBUG", "1")
    first = config.load(str(tmp_path))
    second = config.load(str(tmp_path))
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert first["PRODUCTION"] is False


def test_tests_are_not_production(tmp_path, monkeypatch):
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.setenv("SECRET_KEY", "set")
    assert config.load(str(tmp_path), testing=True)["PRODUCTION"] is False
    assert config.load(str(tmp_path))["PRODUCTION"] is True


def test_pages_with_a_persons_own_data_are_kept_out_of_caches(client, app):
    url = start_chat(client)
    link = share_link(client, url)
    reply = messages_of(app)[-1].id
    own = [client.get(path) for path in (
        "/", url, f"{url}/share", f"{url}/export.md", f"{url}/export.json", "/shares",
        "/devices", "/conversations", "/search?q=Hello", f"{url}/messages/{reply}",
        f"{link}/continue", "/c/missing")]
    own.append(client.post(f"{url}/rename", data={"title": "T"},
                           headers={"HX-Request": "true"}))
    for response in own:
        assert response.cache_control.private and response.cache_control.no_store, (
            response.request.path, response.headers.get("Cache-Control"))
    with client.get(f"{url}/messages/{reply}/stream") as stream:
        assert stream.cache_control.private and stream.cache_control.no_cache
    shared = client.get(link)
    assert shared.cache_control.private and shared.cache_control.no_cache
    assert not shared.cache_control.no_store
    with client.get("/static/favicon.svg") as static:
        assert not static.cache_control.private and not static.cache_control.no_store


def test_hsts_only_over_https(make_app):
    headers = {"X-Forwarded-Proto": "https"}
    plain = make_app().test_client()
    assert "Strict-Transport-Security" not in plain.get("/").headers
    assert "Strict-Transport-Security" not in plain.get("/", headers=headers).headers
    direct = plain.get("/", base_url="https://localhost")
    assert direct.headers["Strict-Transport-Security"] == "max-age=31536000"
    behind_proxy = make_app(TRUST_PROXY=1).test_client()
    assert "Strict-Transport-Security" not in behind_proxy.get("/").headers
    response = behind_proxy.get("/", headers=headers)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    with behind_proxy.get("/static/favicon.svg", headers=headers) as static:
        assert static.headers["Strict-Transport-Security"] == "max-age=31536000"
