"""The reply bus on one host: a Unix datagram socket per process, in a shared folder.

For SQLite, whose processes all run on one host (they share the database file). Each
process binds a socket named after it in a folder next to the database file (where SQLite
keeps its own -wal and -shm files, so it is writable and belongs to that database alone;
only the app's user may enter it); publishing sends each payload to every socket there. A datagram to a
process that is gone is refused, and its socket file removed; one to a process too busy
to read its queue is dropped after a short wait, and that follower catches up from the
row. Nothing to install or run: the kernel carries the messages.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from . import CHECK_SECONDS

SEND_TIMEOUT_SECONDS = 0.05
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere


class DatagramTransport:
    """Datagrams between the processes of one host that use the same database."""

    max_payload = 60_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._sender: socket.socket | None = None
        self._path: Path | None = None

    @classmethod
    def for_database(cls, database: str) -> DatagramTransport:
        """The transport of the processes using the SQLite database file at this path
        (a folder in the temporary directory when that path is too long for sockets)."""
        folder = Path(database).resolve().with_name(Path(database).name + "-bus")
        if len(str(folder)) + 30 > MAX_SOCKET_PATH:
            name = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
            folder = Path(tempfile.gettempdir()) / f"regolo-chat-bus-{name}"
        return cls(folder)

    def send(self, payloads: list[str]) -> None:
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.settimeout(SEND_TIMEOUT_SECONDS)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        for entry in os.scandir(self.folder):
            if self._path is not None and entry.path == str(self._path):
                continue
            for payload in payloads:
                try:
                    self._sender.sendto(payload.encode(), entry.path)
                except (ConnectionRefusedError, FileNotFoundError):
                    Path(entry.path).unlink(missing_ok=True)  # its process is gone
                    break
                except (TimeoutError, BlockingIOError):
                    break  # its queue is full: it catches up from the database

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()

    def listen(self, deliver: Callable[[str], None], ready: threading.Event,
               closed: threading.Event) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._path = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}.sock"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(str(self._path))
            receiver.settimeout(CHECK_SECONDS)
            ready.set()
            try:
                while not closed.is_set():
                    try:
                        deliver(receiver.recv(self.max_payload + 1024).decode())
                    except TimeoutError:
                        pass
            finally:
                self._path.unlink(missing_ok=True)
