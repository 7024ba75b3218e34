"""Starts the app's processes from the Procfile, and the fake upstream beside them.

``start_app`` runs the Procfile's release and web commands itself, so a benchmark or test
sees gunicorn's master as its child and its workers below it (``harness.paas`` has honcho
run them instead, as a PaaS does). ``start_upstream`` runs harness/timed_upstream.py. Both
get a process group of their own (``stop_process``), and every gunicorn a private control
socket. Free ports, health waits and the open-file limit are here too.
"""

from __future__ import annotations

import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from harness.procfs import children

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
START_SECONDS = 60.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def procfile_command(process: str) -> list[str]:
    """The command line of one process type of the Procfile, as a list."""
    for line in PROCFILE.read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command)
    raise KeyError(f"the Procfile has no {process!r} process")


def private_control_socket(env: dict[str, str], path: Path) -> dict[str, str]:
    """env with gunicorn's control socket at path: its default path is shared by every
    gunicorn of this user on the machine, so another instance's commands could reach this one."""
    args = (env.get("GUNICORN_CMD_ARGS", "") + f" --control-socket {path}").strip()
    return env | {"GUNICORN_CMD_ARGS": args}


def wait_until_healthy(url: str, process: subprocess.Popen, log_path: Path,
                       timeout: float = START_SECONDS, ready=lambda: True) -> None:
    """Until GET url/healthz answers 200 (and ready() holds); raises if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the web process exited ({process.returncode}); see {log_path}")
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200 and ready():
                return
        except requests.RequestException:  # not listening yet, or the worker is booting
            pass
        time.sleep(0.1)
    stop_process(process)
    raise RuntimeError(f"the web process did not become healthy in {timeout:.0f} s; "
                       f"see {log_path}")


def stop_process(proc: subprocess.Popen | None, grace: float = 10.0) -> None:
    """SIGTERM the process group we started, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def _pin(cpus: set[int] | None):
    """A preexec_fn that pins the child (and what it forks) to these CPUs, or None."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_upstream(tokens: int, token_delay: float, delay: float, api_key: str,
                   threads: bool, log_path: Path,
                   models_delay: float = 0.0, cpus: set[int] | None = None,
                   nagle: bool = False) -> tuple[subprocess.Popen, str]:
    """Start harness/timed_upstream.py in its own process group; its base URL."""
    cmd = [sys.executable, "-m", "harness.timed_upstream", "--port", "0",
           "--tokens", str(tokens), "--token-delay", str(token_delay),
           "--delay", str(delay), "--api-key", api_key, "--models-delay", str(models_delay)]
    if threads:
        cmd.append("--threads")
    if nagle:
        cmd.append("--nagle")
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True, cwd=ROOT, text=True,
                                preexec_fn=_pin(cpus))
    line = proc.stdout.readline().strip()
    if not line.startswith("http://"):
        stop_process(proc)
        raise RuntimeError(f"fake upstream did not start: {line!r}, see {log_path}")
    return proc, line


def start_app(env_extra: dict[str, str], port: int, log_path: Path,
              timeout: float = 30.0, cpus: set[int] | None = None,
              migrate: bool = True, root: Path = ROOT) -> subprocess.Popen:
    """Run the Procfile's release (unless migrate is False), then its web process on port,
    with this virtualenv's tools first on PATH; wait until it is healthy with its workers up.

    root is the directory of the code to run (another revision's files, exported), with
    this checkout's virtualenv.

    Messages per minute are not limited: every simulated person comes from 127.0.0.1.
    """
    limits = {"MESSAGES_PER_MINUTE_PER_IP": "1000000", "MESSAGES_PER_MINUTE_PER_OWNER": "1000"}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, **limits, **env_extra, "PORT": str(port), "PATH": path}
    env = private_control_socket(env, log_path.parent / f"gunicorn-{port}.ctl")
    if migrate:
        subprocess.run(procfile_command("release"), cwd=root, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(procfile_command("web"), cwd=root, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_pin(cpus))
    workers = int(env.get("WEB_CONCURRENCY") or 1)
    wait_until_healthy(f"http://127.0.0.1:{port}", proc, log_path, timeout,
                       ready=lambda: len(children(proc.pid)) >= workers)
    return proc
