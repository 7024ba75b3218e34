"""How responses travel: /healthz, compression (never on event streams), static caching."""

from __future__ import annotations

from tests.conftest import API_KEY, start_chat
from tests.test_streaming import send_htmx
from webapp import create_app
from webapp.assets import asset_url

BROWSER_ENCODINGS = {"Accept-Encoding": "gzip, deflate, br, zstd"}


def test_healthz_checks_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.cache_control.no_store
    assert "Set-Cookie" not in response.headers


def test_healthz_needs_no_access_password(make_app):
    response = make_app(ACCESS_PASSWORD="letmein").test_client().get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_healthz_is_503_when_the_database_is_unreachable(make_app, tmp_path):
    app = create_app({"TESTING": True, "REGOLO_API_KEY": API_KEY,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/no/such/dir/chat.db"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "error": "database unreachable"}


def test_pages_are_compressed_for_browsers_that_ask(client):
    page = client.get("/", headers=BROWSER_ENCODINGS)
    assert page.headers["Content-Encoding"] in {"br", "zstd", "gzip"}
    assert "Accept-Encoding" in page.headers["Vary"]
    assert len(page.data) < len(client.get("/").data) / 2
    assert "Content-Encoding" not in client.get("/").headers


def test_reply_streams_are_never_compressed(client, upstream):
    url = start_chat(client, "Hello")
    stream_url = send_htmx(client, url, "Stream this")
    response = client.get(stream_url, headers=BROWSER_ENCODINGS)
    assert response.mimetype == "text/event-stream"
    assert "Content-Encoding" not in response.headers
    assert "event: done" in response.get_data(as_text=True)


def test_versioned_static_files_are_cached_for_a_year_and_compressed(client, app):
    with app.test_request_context():
        css = asset_url("css/app.css")
    assert "?v=" in css
    with client.get(css) as plain, client.get(css, headers=BROWSER_ENCODINGS) as response:
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["Content-Encoding"] in {"br", "zstd", "gzip"}
        assert len(response.data) < len(plain.data) / 2
        etag = response.headers["ETag"]
    with client.get(css, headers={"If-None-Match": etag, **BROWSER_ENCODINGS}) as again:
        assert again.status_code == 304
    with client.get("/static/css/app.css") as unversioned:
        assert "no-cache" in unversioned.headers["Cache-Control"]
