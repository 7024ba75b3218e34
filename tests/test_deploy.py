"""The Procfile run as a PaaS runs it (honcho): release migrates, web serves on $PORT, /healthz.

It deploys onto an empty database: SQLite, and PostgreSQL in scripts/test's PostgreSQL run.
"""

from __future__ import annotations

import requests

from harness.fake_upstream import FakeUpstream
from harness.paas import PaasApp, app_environment, hidden_fields
from tests.conftest import API_KEY


def test_the_procfile_releases_then_serves(empty_database_url, tmp_path):
    log = tmp_path / "honcho.log"
    with FakeUpstream(api_key=API_KEY) as upstream:
        env = app_environment(empty_database_url, REGOLO_BASE_URL=upstream.base_url,
                              REGOLO_API_KEY=API_KEY)
        with PaasApp(env, log) as app:
            health = requests.get(f"{app.url}/healthz", timeout=10)
            assert (health.status_code, health.json()) == (200, {"status": "ok"})

            with requests.Session() as browser:  # a cookie jar, like a browser
                fields = hidden_fields(browser.get(f"{app.url}/", timeout=10).text)
                sent = browser.post(f"{app.url}/c", data={**fields, "content": "Deployed?"},
                                    timeout=30)
                assert sent.status_code == 200 and "/c/" in sent.url
                assert "You said: Deployed?" in sent.text
                assert sent.headers["Content-Encoding"] in {"br", "zstd", "gzip"}
                again = browser.get(sent.url, timeout=10)
                assert again.text.count("You said: Deployed?") == 1
            assert upstream.sent_messages(0) == [{"role": "user", "content": "Deployed?"}]

    output = log.read_text()
    assert "release.1 stopped (rc=0)" in output
    assert "Running upgrade" in output  # the release step migrated the empty database
    assert f"Listening at: http://0.0.0.0:{app.port}" in output
    assert '"POST /c HTTP/1.1" 303' in output  # request lines reach stdout
