"""Runs the app the way a PaaS does: honcho starts the Procfile's release, then its web process on $PORT.

Used by the browser tests, the deployment test and bench/page_weight.py, so all of them
exercise the real Procfile, gunicorn.conf.py and migrations rather than a test client.
(harness.processes runs the same Procfile commands without honcho.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType

from harness.processes import (PROCFILE, ROOT, free_port, private_control_socket,
                               wait_until_healthy)

STOP_SECONDS = 20.0


class _HiddenFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") == "hidden" and found.get("name"):
            self.fields[found["name"]] = found.get("value") or ""


def hidden_fields(page_html: str) -> dict[str, str]:
    """The hidden inputs of a page's forms (a CSRF token, say), to post as a browser would."""
    parser = _HiddenFields()
    parser.feed(page_html)
    return parser.fields


def app_environment(database_url: str, **settings: str) -> dict[str, str]:
    """A production environment (no FLASK_DEBUG): this venv's tools first, no developer's .env."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("REGOLO_", "DATABASE_", "FLASK_"))}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
        "SECRET_KEY": "a-long-random-secret-for-tests-only",
        "DATABASE_URL": database_url,
    })
    env.update(settings)
    return env


class PaasApp:
    """The Procfile's release then web processes under honcho, on a free port, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        control = Path(tempfile.gettempdir()) / f"regolo-chat-gunicorn-{self.port}.ctl"
        self.env = private_control_socket(env | {"PORT": str(self.port)}, control)
        self.log_path = log_path
        self._web: subprocess.Popen | None = None

    def honcho(self, process: str) -> list[str]:
        """The honcho command that starts one process type of the Procfile."""
        empty_env_file = os.devnull  # no .env: the environment is the whole configuration
        return [sys.executable, "-m", "honcho", "--no-colour", "-f", str(PROCFILE),
                "-d", str(ROOT), "-e", empty_env_file, "start", process]

    def start(self) -> PaasApp:
        """Run the release to completion, start web, and wait until /healthz answers 200."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            release = subprocess.run(self.honcho("release"), env=self.env, cwd=ROOT,
                                     stdout=log, stderr=subprocess.STDOUT, timeout=120)
            if release.returncode != 0:
                raise RuntimeError(f"the release process failed; see {self.log_path}")
            self._web = subprocess.Popen(self.honcho("web"), env=self.env, cwd=ROOT,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            log.close()
        wait_until_healthy(self.url, self._web, self.log_path)
        return self

    @property
    def honcho_pid(self) -> int:
        """The pid of honcho running the web process (gunicorn runs below it)."""
        return self._web.pid

    def stop(self) -> None:
        """SIGTERM to honcho (it stops gunicorn gracefully); SIGKILL the group if it hangs."""
        if self._web is None or self._web.poll() is not None:
            return
        self._web.send_signal(signal.SIGTERM)
        try:
            self._web.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self._web.pid, signal.SIGKILL)
            self._web.wait()

    def __enter__(self) -> PaasApp:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
