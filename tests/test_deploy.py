"""The Procfile run as a PaaS runs it (honcho): release migrates, web serves on $PORT, /healthz.

It deploys onto an empty database: SQLite, and PostgreSQL in scripts/test's PostgreSQL run.
"""

from __future__ import annotations

import subprocess

import pytest
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
                assert again.text.count("<p>You said: Deployed?</p>") == 1
            assert upstream.sent_messages(0) == [{"role": "user", "content": "Deployed?"}]

    output = log.read_text()
    assert "release.1 stopped (rc=0)" in output
    assert "Running upgrade" in output  # the release step migrated the empty database
    assert f"Listening at: http://0.0.0.0:{app.port}" in output
    assert '"POST /c HTTP/1.1" 303' in output  # request lines reach stdout


SECRET_KEY_SENTENCE = ("SECRET_KEY is not set: set it to a long random value, such as the "
                       "output of python3 -c 'import secrets; print(secrets.token_hex(32))'")


@pytest.mark.parametrize("process", ["release", "web"])
def test_without_a_secret_key_each_process_says_so_in_one_sentence(empty_database_url,
                                                                   tmp_path, process):
    env = app_environment(empty_database_url)
    del env["SECRET_KEY"]
    app = PaasApp(env, tmp_path / "honcho.log")
    done = subprocess.run(app.honcho(process), env=app.env, capture_output=True, text=True,
                          timeout=60)
    output = done.stdout + done.stderr
    assert output.count(SECRET_KEY_SENTENCE) == 1, output
    assert "Traceback" not in output and "Exception" not in output, output
    assert "App failed to load" in output or process == "release", output
    assert f"{process}.1 stopped (rc=4)" in output, output
