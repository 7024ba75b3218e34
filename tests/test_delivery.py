"""How responses travel: /healthz, compression (never on event streams), static caching,
the web app manifest."""

from __future__ import annotations

import json
import re
from html import unescape
from io import BytesIO
from urllib.parse import urljoin

from PIL import Image

from tests.conftest import API_KEY, start_chat
from tests.test_streaming import send_htmx
from webapp import create_app
from webapp.web.assets import asset_url

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


def test_pages_link_a_web_app_manifest_with_its_icons(client):
    page = client.get("/").get_data(as_text=True)
    manifest_url = unescape(re.search(r'<link rel="manifest" href="([^"]+)"', page)[1])
    assert re.search(r'<link rel="apple-touch-icon" href="/static/icon-192.png\?v=', page)
    with client.get(manifest_url) as response:
        assert response.status_code == 200
        assert response.mimetype == "application/manifest+json"
        manifest = json.loads(response.get_data())
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert manifest["name"] == "Regolo Chat"
    sizes = {}
    for icon in manifest["icons"]:
        with client.get(urljoin(manifest_url, icon["src"])) as response:
            assert response.status_code == 200 and response.mimetype == icon["type"]
            if icon["type"] == "image/png":
                sizes[icon["sizes"]] = Image.open(BytesIO(response.get_data())).size
    assert sizes == {"192x192": (192, 192), "512x512": (512, 512)}
