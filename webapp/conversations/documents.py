"""Documents sent with a message: their text read within limits, and how it is sent.

Text files (plain text, Markdown, source code, CSV/TSV, JSON, HTML as its source) are read
as UTF-8, or UTF-16/32 with a byte order mark; a PDF's text is extracted with pypdf. Every
document is read in a child process (document_child.py) with an address-space limit and
a timeout, a set number at a time: pypdf is pure Python and a 300-page PDF keeps a CPU
busy for seconds, which in a gevent worker would stop every reply stream for as long; and
a PDF made to blow up in memory then ends the child, not the worker. Under gevent the
wait for the child is cooperative (the subprocess module is patched). What is stored and
replayed is the text, once, as extracted here. Knows nothing of Flask.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import BinaryIO
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..upstream.storable import storable
from .text import clean_text

log = logging.getLogger(__name__)

CHILD = str(Path(__file__).with_name("document_child.py"))
PDF_SUFFIX = ".pdf"
# Where a document's block would end early: "</document", in any case.
_CLOSING_TAG = re.compile(r"</(?=document)", re.IGNORECASE)

# Why a document was refused, as the end of a sentence that starts with its name.
PROBLEMS = {
    "encrypted": "is protected by a password; save a copy without one and attach that.",
    "no-text": ("has no text to read (a scanned PDF holds pictures of pages); "
                "attach a PDF with text, or the pages as images."),
    "broken": "is a PDF that could not be read (it may be damaged).",
    "not-pdf": "is not a PDF, though its name ends in .pdf.",
    "binary": ("is not a text file (its name does not say what it holds); attach text, "
               "Markdown, code, CSV, JSON, HTML or PDF."),
    "encoding": "is text in an encoding that can't be read; save it as UTF-8.",
    "memory": "needs more memory to read than this server gives one document.",
    "timeout": "took too long to read.",
}


class Unreadable(Exception):
    """A document was refused; str(self) is a sentence naming it."""


class TooLarge(Exception):
    """A document's file is over the size allowed to read."""


@dataclass(frozen=True)
class ExtractedDocument:
    """A document's name, kind ("text" or "pdf"), size in bytes, and text."""

    name: str
    kind: str
    byte_size: int
    text: str


def kind_of(name: str) -> str:
    """"pdf" for a name ending in .pdf, else "text" (the bytes must then be text)."""
    return "pdf" if PurePosixPath(name.lower()).suffix == PDF_SUFFIX else "text"


class DocumentReader:
    """Reads documents' text in child processes, at most `at_once` at a time here; a
    document waits for its turn at most `wait` seconds (by default, `timeout`)."""

    def __init__(self, max_chars: int, memory_bytes: int, timeout: float,
                 at_once: int, wait: float | None = None) -> None:
        self.max_chars = max_chars
        self.memory_bytes = memory_bytes
        self.timeout = timeout
        self.wait = timeout if wait is None else wait
        self._turns = threading.BoundedSemaphore(at_once)

    def read(self, name: str, file: BinaryIO, max_bytes: int) -> ExtractedDocument:
        """The text of the document in `file`, cleaned as the app stores text; TooLarge
        past max_bytes, Unreadable with a sentence naming `name` (already cleaned and
        shortened by the caller) otherwise, also when its turn does not come within
        `wait`. The file's bytes are read only once it is this document's turn, so
        documents waiting for theirs hold no memory (an upload waits in its temporary
        file)."""
        kind = kind_of(name)
        if not self._turns.acquire(timeout=self.wait):
            raise Unreadable(f"“{name}” could not be read now: the server is reading other "
                             "documents. Send it again in a minute.")
        try:
            raw = file.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise TooLarge(name)
            result = self._run_child(kind, raw)
        finally:
            self._turns.release()
        if "problem" in result:
            problem = result["problem"]
            if problem == "too-long":
                raise Unreadable(f"“{name}” has more than {self.max_chars:,} characters of "
                                 "text, the limit for one document. Attach a part of it.")
            raise Unreadable(f"“{name}” {PROBLEMS[problem]}")
        text = storable(clean_text(result["text"]))
        if not text.strip():
            raise Unreadable(f"“{name}” is empty.")
        return ExtractedDocument(name, kind, len(raw), text)

    def _run_child(self, kind: str, raw: bytes) -> dict:
        command = [sys.executable, "-I", CHILD, kind, str(self.max_chars),
                   str(self.memory_bytes)]
        try:
            done = subprocess.run(command, input=raw, capture_output=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"problem": "timeout"}
        try:
            return json.loads(done.stdout)
        except ValueError:  # killed by the memory limit before it could answer
            log.info("document reader exited %s: %s", done.returncode,
                     done.stderr[-500:].decode(errors="replace"))
            return {"problem": "memory"}


def sent_chars(content: str, documents: Sequence[ExtractedDocument]) -> int:
    """How many characters a message sends: its text and its documents' texts."""
    return len(content) + sum(len(document.text) for document in documents)


def upstream_text(content: str, documents: list[tuple[str, str]]) -> str:
    """A user message as sent upstream: each document (name, text) as a delimited block,
    in the order attached, then what the person typed. A closing tag inside a name or a
    text is written <\\/document, so a block ends only where it is closed here."""
    if not documents:
        return content
    blocks = [f'<document name="{_attribute(name)}">\n{_unclosing(text)}\n</document>'
              for name, text in documents]
    return "\n\n".join(blocks + [content])


def _attribute(name: str) -> str:
    return _unclosing(name.replace('"', "'").replace("\n", " "))


def _unclosing(text: str) -> str:
    return _CLOSING_TAG.sub(r"<\\/", text)
