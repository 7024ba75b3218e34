"""Benchmark plumbing: processes (fake upstream, gunicorn), /proc readings, a lean HTTP/SSE client.

The client speaks just enough HTTP/1.1 on gevent sockets (Content-Length, chunked and
read-until-close bodies) to follow thousands of event streams from one process and to
timestamp every event the moment its last byte is read. It is used for the app and for
the upstream called directly, so both sides of every comparison pay the same client costs.
Import this after ``gevent.monkey.patch_all()``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
TOKEN_RE = re.compile(rb"tok(\d+)")
SSE_CONNECT_RE = re.compile(r'sse-connect="([^"]+)"')
CSRF_FIELD_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# --------------------------------------------------------------------------- processes

def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


def schedstat(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread ran on a CPU, and waited runnable for one."""
    with open(f"/proc/{pid}/schedstat") as f:
        run_ns, wait_ns, _ = f.read().split()
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle or waiting for I/O) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def pss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return kids


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


def start_upstream(tokens: int, token_delay: float, delay: float, api_key: str,
                   threads: bool, log_path: Path,
                   models_delay: float = 0.0, cpus: set[int] | None = None,
                   nagle: bool = False) -> tuple[subprocess.Popen, str]:
    """Start bench/_upstream.py in its own process group; its base URL."""
    cmd = [sys.executable, str(ROOT / "bench" / "_upstream.py"), "--port", "0",
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


def _pin(cpus: set[int] | None):
    """A preexec_fn that pins the child (and what it forks) to these CPUs, or None."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_app(env_extra: dict[str, str], port: int, log_path: Path,
              timeout: float = 30.0, cpus: set[int] | None = None,
              root: Path = ROOT) -> subprocess.Popen:
    """Migrate, then start the Procfile's web command; wait until GET / answers.

    root is the directory of the code to run (another revision's files, exported), with
    this checkout's virtualenv.

    Gunicorn's control socket gets a private path next to the log: its default path is
    shared by every gunicorn of this user, so commands meant for another instance on the
    machine could reach this one.
    """
    # Every simulated person comes from 127.0.0.1: the per-address send limit is lifted.
    limits = {"MESSAGES_PER_MINUTE_PER_IP": "1000000", "MESSAGES_PER_MINUTE_PER_OWNER": "1000"}
    env = {**os.environ, **limits, **env_extra, "PORT": str(port)}
    env["GUNICORN_CMD_ARGS"] = (env.get("GUNICORN_CMD_ARGS", "") + " --control-socket "
                                + str(log_path.parent / "gunicorn.ctl")).strip()
    subprocess.run([str(VENV_BIN / "flask"), "--app", "webapp", "db", "upgrade"], cwd=root,
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log_path, "wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--config", "gunicorn.conf.py",
                                 "webapp:create_app()"], cwd=root, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_pin(cpus))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}), see {log_path}")
        try:
            status, _, _ = simple_request(port, "GET", "/", timeout=2)
            if status == 200 and children(proc.pid):
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"gunicorn did not answer within {timeout}s, see {log_path}")


# --------------------------------------------------------------------------- HTTP client

class ProtocolError(Exception):
    pass


class Conn:
    """One HTTP/1.1 connection to 127.0.0.1; recv times are time.monotonic()."""

    def __init__(self, port: int, timeout: float):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.t_last = time.monotonic()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> None:
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _recv(self) -> None:
        data = self.sock.recv(262144)
        self.t_last = time.monotonic()
        if not data:
            raise ProtocolError("connection closed by the server")
        self.buf += data

    def read_head(self) -> tuple[int, dict[str, str], list[str]]:
        """Status, headers (lower-case names) and the Set-Cookie values."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._recv()
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        status_line, *lines = head.split("\r\n")
        headers: dict[str, str] = {}
        cookies: list[str] = []
        for line in lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                cookies.append(value)
            headers[name] = value
        return int(status_line.split()[1]), headers, cookies

    def iter_body(self, headers: dict[str, str]):
        """(bytes, monotonic time the last of them arrived) as the body arrives."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                while (eol := self.buf.find(b"\r\n")) < 0:
                    self._recv()
                size = int(bytes(self.buf[:eol]).split(b";")[0], 16)
                if size == 0:  # last chunk, optional trailers, blank line
                    while (end := self.buf.find(b"\r\n\r\n", eol)) < 0:
                        self._recv()
                    del self.buf[:end + 4]
                    return
                end = eol + 2 + size
                while len(self.buf) < end + 2:
                    self._recv()
                piece = bytes(self.buf[eol + 2:end])
                del self.buf[:end + 2]
                yield piece, self.t_last
        elif "content-length" in headers:
            remaining = int(headers["content-length"])
            while len(self.buf) < remaining:
                self._recv()
            piece = bytes(self.buf[:remaining])
            del self.buf[:remaining]
            if piece:
                yield piece, self.t_last
        else:
            while True:
                if self.buf:
                    piece = bytes(self.buf)
                    del self.buf[:]
                    yield piece, self.t_last
                try:
                    self._recv()
                except ProtocolError:
                    return

    def read_body(self, headers: dict[str, str]) -> bytes:
        return b"".join(piece for piece, _ in self.iter_body(headers))


def iter_events(conn: Conn, headers: dict[str, str]):
    """Server-sent events (raw bytes without the blank line) and their arrival times."""
    pending = b""
    for piece, t in conn.iter_body(headers):
        pending += piece
        if b"\n\n" not in pending:
            continue
        *events, pending = pending.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in events:
            if event:
                yield event, t
    if pending.strip():
        yield pending, conn.t_last


def simple_request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
                   body: bytes = b"", timeout: float = 30.0):
    """One request on a fresh connection: status, headers and body."""
    conn = Conn(port, timeout)
    try:
        conn.send(method, path, {"Connection": "close", **(headers or {})}, body)
        status, hdrs, _ = conn.read_head()
        return status, hdrs, conn.read_body(hdrs)
    finally:
        conn.close()


def form(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


# --------------------------------------------------------------------------- one stream

@dataclass
class StreamResult:
    """What the client saw of one reply (times are time.monotonic())."""

    mode: str
    tag: str
    t_start: float
    tokens: int
    arrivals: list[float | None] = field(default_factory=list)
    error: str | None = None
    t_sent: float | None = None
    t_stream_open: float | None = None
    t_end: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def see(self, event: bytes, t: float, upto: int) -> int:
        """Record arrival times of the token indices first seen in this event."""
        found = TOKEN_RE.findall(event)
        if not found:
            return upto
        top = min(max(int(x) for x in found), self.tokens - 1)
        for index in range(upto + 1, top + 1):
            self.arrivals[index] = t
        return max(upto, top)


class Counter:
    """Open event streams right now, and the most at once."""

    def __init__(self):
        self.now = 0
        self.peak = 0

    def up(self):
        self.now += 1
        self.peak = max(self.peak, self.now)

    def down(self):
        self.now -= 1


def follow_events(conn: "Conn", headers: dict, result: StreamResult, streams: Counter,
                  end_marker: bytes, end_name: str) -> None:
    """Read an open event stream to its end into result: token arrivals, end, errors."""
    result.t_stream_open = conn.t_last
    streams.up()
    try:
        upto, done = -1, False
        for event, t in iter_events(conn, headers):
            upto = result.see(event, t, upto)
            if event.startswith(end_marker):
                done = True
                result.t_end = t
        if not done:
            result.error = f"stream ended without {end_name}"
        elif upto < result.tokens - 1:
            result.error = f"missing tokens ({upto + 1}/{result.tokens})"
    finally:
        streams.down()


def relay_round(port: int, user: dict, tag: str, tokens: int, timeout: float,
                streams: Counter) -> StreamResult:
    """Send a message the way htmx does, then follow its reply's event stream to "done"."""
    result = StreamResult("relay", tag, time.monotonic(), tokens, [None] * tokens)
    conn = None
    try:
        conn = Conn(port, timeout)
        conn.send("POST", f"/c/{user['public_id']}/messages",
                  {"Cookie": user["cookie"], "HX-Request": "true", "X-CSRFToken": user["csrf"],
                   "Content-Type": "application/x-www-form-urlencoded"},
                  form({"content": tag}))
        status, headers, _ = conn.read_head()
        body = conn.read_body(headers).decode("utf-8", "replace")
        result.t_sent = conn.t_last
        if status != 200:
            result.error = f"send HTTP {status}"
            return result
        match = SSE_CONNECT_RE.search(body)
        if not match:
            result.error = "no sse-connect in the fragment"
            return result
        if headers.get("connection", "").lower() == "close":
            conn.close()
            conn = Conn(port, timeout)
        conn.send("GET", match.group(1), {"Cookie": user["cookie"],
                                          "Accept": "text/event-stream",
                                          "Cache-Control": "no-cache"})
        status, headers, _ = conn.read_head()
        if status != 200:
            result.error = f"stream HTTP {status}"
            return result
        follow_events(conn, headers, result, streams, b"event: done", "done")
    except (OSError, ProtocolError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        if conn is not None:
            conn.close()
    return result


def direct_round(port: int, path: str, api_key: str, model: str, tag: str, tokens: int,
                 timeout: float, streams: Counter) -> StreamResult:
    """The same measurement against the upstream's own event stream."""
    result = StreamResult("direct", tag, time.monotonic(), tokens, [None] * tokens)
    conn = None
    try:
        conn = Conn(port, timeout)
        body = json.dumps({"model": model, "stream": True,
                           "stream_options": {"include_usage": True},
                           "messages": [{"role": "user", "content": tag}]}).encode()
        conn.send("POST", path, {"Authorization": f"Bearer {api_key}",
                                 "Content-Type": "application/json",
                                 "Accept": "text/event-stream"}, body)
        status, headers, _ = conn.read_head()
        if status != 200:
            result.error = f"HTTP {status}"
            return result
        follow_events(conn, headers, result, streams, b"data: [DONE]", "[DONE]")
    except (OSError, ProtocolError, ValueError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:120]
    finally:
        if conn is not None:
            conn.close()
    return result


def create_user(port: int, label: str, timeout: float) -> dict:
    """A new browser (its own session cookie) with one idle conversation of two turns.

    Uses only what the measured phase uses (no page views): POST /c, then a second
    message, retried while the first reply is still being written (409), whose stream is
    followed to its end. Setup messages start with "setup": the fake upstream answers them
    at once.
    """
    _, headers, page = _request_with_cookies(port, "GET", "/", {}, b"", timeout)
    cookie, token = headers.get("_cookie"), CSRF_FIELD_RE.search(page.decode())
    if not cookie or not token:
        raise ProtocolError("the new-chat page set no session cookie or CSRF token")
    status, headers, _ = _request_with_cookies(
        port, "POST", "/c", {"HX-Request": "true", "Cookie": cookie,
                             "X-CSRFToken": token.group(1),
                             "Content-Type": "application/x-www-form-urlencoded"},
        form({"content": f"setup {label}"}), timeout)
    cookie, redirect = headers.get("_cookie", cookie), headers.get("hx-redirect", "")
    if status != 200 or not redirect.startswith("/c/"):
        raise ProtocolError(f"creating a conversation: HTTP {status} {redirect!r}")
    user = {"cookie": cookie, "public_id": redirect[3:], "csrf": token.group(1)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = relay_round(port, user, f"setup {label} again", 0, timeout, Counter())
        if result.ok:
            return user
        if result.error != "send HTTP 409":
            raise ProtocolError(f"setting up a conversation: {result.error}")
        time.sleep(0.1)
    raise ProtocolError("the first reply was still being written after the setup timeout")


def _request_with_cookies(port, method, path, headers, body, timeout):
    conn = Conn(port, timeout)
    try:
        conn.send(method, path, {"Connection": "close", **headers}, body)
        status, hdrs, cookies = conn.read_head()
        body = conn.read_body(hdrs)
        for cookie in cookies:
            if cookie.startswith("session="):
                hdrs["_cookie"] = cookie.split(";", 1)[0]
        return status, hdrs, body
    finally:
        conn.close()


# --------------------------------------------------------------------------- statistics

def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)
