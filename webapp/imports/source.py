"""The uploaded file read as a stream of conversations: a JSON export, or a zip of one.

JSON is parsed as a stream (ijson), one conversation at a time, so a large export is never
held whole in memory. A zip is read in place, never extracted: its member count, total
uncompressed size and compression ratio are checked first (a zip bomb is refused with a
sentence), then its conversations.json, or the conversations-000.json, -001.json, ... of a
split export, are read in order, and the images its conversations point to are found
among its members. Knows nothing of Flask.
"""

from __future__ import annotations

import bisect
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import IO

import ijson

from .common import Image

PURE_PYTHON = ijson.get_backend("python")
ZIP_MAGIC = b"PK\x03\x04"
UTF8_BOM = b"\xef\xbb\xbf"
_CONVERSATIONS = re.compile(r"conversations(-\d+)?\.json", re.IGNORECASE)


class _IntegerOverflow(Exception):
    """The fast parser met an integer it cannot hold."""


class NotAnExport(Exception):
    """The file cannot be read as an export at all; the message says why, as a sentence."""


class BrokenExport(Exception):
    """The file stops being readable part way; what came before it was read."""


@dataclass(frozen=True)
class ZipLimits:
    """What a zip may hold before it is refused unread."""

    max_members: int
    max_uncompressed_bytes: int
    max_ratio: int
    max_image_bytes: int


class Export:
    """An opened export: its conversations as a stream, and the images it holds."""

    def __init__(self, stream: IO[bytes], limits: ZipLimits) -> None:
        head = stream.read(4)
        stream.seek(0)
        self.archive = self._opened_zip(stream, limits) if head == ZIP_MAGIC else None
        self.stream = stream
        self.limits = limits
        self.names = sorted(info.filename.rsplit("/", 1)[-1] for info in self._members())
        self._paths = {info.filename.rsplit("/", 1)[-1]: info for info in self._members()}

    def _members(self) -> list[zipfile.ZipInfo]:
        if self.archive is None:
            return []
        return [info for info in self.archive.infolist() if not info.is_dir()]

    @staticmethod
    def _opened_zip(stream: IO[bytes], limits: ZipLimits) -> zipfile.ZipFile:
        try:
            archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile:
            raise NotAnExport("This zip file is damaged and cannot be opened.") from None
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise NotAnExport(f"This zip file holds {len(members):,} files; an export may "
                              f"hold at most {limits.max_members:,}.")
        total = sum(info.file_size for info in members)
        if total > limits.max_uncompressed_bytes:
            raise NotAnExport(f"This zip file unpacks to {total / 2**20:,.0f} MB; an export "
                              f"may unpack to at most "
                              f"{limits.max_uncompressed_bytes / 2**20:,.0f} MB.")
        for info in members:
            if info.file_size > max(2**20, limits.max_ratio * info.compress_size):
                raise NotAnExport(f"This zip file is refused: {info.filename} unpacks to "
                                  f"more than {limits.max_ratio} times its packed size.")
        return archive

    def json_files(self) -> list[tuple[str, Callable[[], IO[bytes]]]]:
        """The JSON files to read, in order (the upload itself, or the zip's exports), each
        with what opens it from its start."""
        if self.archive is None:
            return [("The file", self._from_start)]
        infos = self._members()
        chosen = sorted((info for info in infos
                         if _CONVERSATIONS.fullmatch(info.filename.rsplit("/", 1)[-1])),
                        key=lambda info: info.filename)
        if not chosen:
            chosen = [info for info in infos if info.filename.lower().endswith(".json")]
        if not chosen:
            raise NotAnExport("This zip file holds no JSON file of conversations "
                              "(conversations.json, as ChatGPT's export has).")
        return [(info.filename, partial(self.archive.open, info)) for info in chosen]

    def _from_start(self) -> IO[bytes]:
        self.stream.seek(0)
        return self.stream

    def check(self) -> None:
        """NotAnExport unless every JSON file to read at least starts as JSON does."""
        for name, opened in self.json_files():
            _opened_json(name, opened())
        self.stream.seek(0)

    def items(self) -> Iterator:
        """Each conversation of the export, in order, as parsed JSON.

        The fast parser (yajl, in C) refuses integers beyond 64 bits, which JSON allows:
        a file holding one is read again from its start by ijson's pure Python parser,
        past the conversations already given.
        """
        for name, opened in self.json_files():
            given = 0
            try:
                for item in _json_items(name, opened(), ijson):
                    given += 1
                    yield item
            except _IntegerOverflow:
                for number, item in enumerate(_json_items(name, opened(), PURE_PYTHON)):
                    if number >= given:
                        yield item

    def find_image(self, pointer: str) -> Image:
        """The image a conversation points to (file-service://file-ID, sediment://ID), found
        in the zip by its name starting with the ID; without its bytes when it is missing
        or too large."""
        wanted = pointer.rsplit("://", 1)[-1].strip()
        at = bisect.bisect_left(self.names, wanted) if wanted else len(self.names)
        if at == len(self.names) or not self.names[at].startswith(wanted):
            return Image(None, "an image that is not in the export")
        info = self._paths[self.names[at]]
        if info.file_size > self.limits.max_image_bytes:
            return Image(None, f"an image over {self.limits.max_image_bytes / 2**20:g} MB")
        with self.archive.open(info) as member:
            return Image(member.read(self.limits.max_image_bytes + 1), info.filename)


def _json_items(name: str, stream: IO[bytes], parser) -> Iterator:
    """The conversations of one JSON file: the items of a top-level list, or the one
    top-level object."""
    stream, first = _opened_json(name, stream)
    count = 0
    try:
        for item in parser.items(stream, "item" if first == b"[" else "", use_float=True):
            count += 1
            yield item
    except (ijson.JSONError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as error:
        if "integer overflow" in str(error):
            raise _IntegerOverflow() from None
        reason = str(error).splitlines()[0].removeprefix("parse error: ") if str(error) else (
            type(error).__name__)
        raise BrokenExport(f"{name} stops being valid JSON in conversation {count + 1} "
                           f"({reason}); the conversations before it were read.") from None


def _opened_json(name: str, stream: IO[bytes]) -> tuple[_Prefixed, bytes]:
    """The stream past any byte order mark, and its first character: [ or {."""
    head = stream.read(3)
    opened = _Prefixed(b"" if head == UTF8_BOM else head, stream)
    first = opened.peek_first()
    if first not in (b"[", b"{"):
        raise NotAnExport(f"{name} is not JSON (nor a zip file): it does not start with "
                          "[ or {, as an export does.")
    return opened, first


class _Prefixed:
    """A byte stream with some bytes already read put back in front."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self.prefix, self.stream = prefix, stream

    def peek_first(self) -> bytes:
        """The first byte that is not white space (read ahead and kept)."""
        while not self.prefix.strip():
            more = self.stream.read(4096)
            if not more:
                return b""
            self.prefix += more
        return self.prefix.lstrip()[:1]

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            if size is None or size < 0:
                data, self.prefix = self.prefix + self.stream.read(), b""
                return data
            data, self.prefix = self.prefix[:size], self.prefix[size:]
            return data
        return self.stream.read(size)
