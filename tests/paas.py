"""Runs the app the way a PaaS does: honcho starts the Procfile's release, then its web process on $PORT.

Used by the browser tests, the deployment test and bench/page_weight.py, so all of them
exercise the real Procfile, gunicorn.conf.py and migrations rather than a test client.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType

import requests

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
START_SECONDS = 60.0
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


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        # A control socket of its own: gunicorn's default path is shared by every gunicorn
        # of this user on the machine, so another instance's commands could reach this one.
        control = Path(tempfile.gettempdir()) / f"regolo-chat-gunicorn-{self.port}.ctl"
        self.env = env | {"PORT": str(self.port),
                          "GUNICORN_CMD_ARGS": f"--control-socket {control}"}
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
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._web.poll() is not None:
                raise RuntimeError(f"the web process exited; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or the worker is booting
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the web process did not become healthy; see {self.log_path}")

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
