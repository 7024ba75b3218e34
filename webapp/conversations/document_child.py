"""The text of one document, read in a process of its own: run as a script, not imported.

    python -I document_child.py KIND MAX_CHARS MEMORY_BYTES < file > result.json

KIND is "pdf" or "text". The process limits its own address space to MEMORY_BYTES
before it reads anything, so a PDF built to exhaust memory ends this process, not the
server's. It writes one JSON object: {"text": ...} or {"problem": ...} naming what is
wrong ("encrypted", "no-text", "broken", "binary", "encoding", "too-long"). It needs the
standard library and, for PDFs, pypdf; it imports nothing of the app, so it starts fast.
"""

import codecs
import io
import json
import logging
import resource
import sys
import warnings

# Starts of files that are certainly not text (images, archives, executables, PDFs).
BINARY_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"RIFF", b"PK\x03\x04",
                     b"\x7fELF", b"MZ", b"%PDF-", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!",
                     b"\xd0\xcf\x11\xe0")
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))


class Problem(Exception):
    """The document cannot be read; args[0] names why."""


def text_of_text(raw: bytes) -> str:
    """A text file's text: UTF-8, or UTF-16/32 with a byte order mark."""
    for bom, encoding in BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError:
                raise Problem("encoding") from None
    if raw.startswith(BINARY_SIGNATURES):
        raise Problem("binary")
    if looks_like_utf16(raw):
        raise Problem("encoding")
    if b"\0" in raw:
        raise Problem("binary")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem("encoding") from None


def looks_like_utf16(raw: bytes) -> bool:
    """Text of Latin letters in UTF-16 without a byte order mark: in its first bytes (16
    at least), one byte in two (the odd ones or the even ones, not both) is nearly
    always NUL."""
    sample = raw[:4096]
    pairs = len(sample) // 2
    if pairs < 8:
        return False
    even, odd = sample[0::2].count(0) / pairs, sample[1::2].count(0) / pairs
    return max(even, odd) >= 0.9 and min(even, odd) <= 0.1


def text_of_pdf(raw: bytes, max_chars: int) -> str:
    """A PDF's text, page after page; stops once it is past max_chars."""
    from pypdf import PdfReader

    if not raw.startswith(b"%PDF-"):
        raise Problem("not-pdf")
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise Problem("encrypted")
        pages, length = [], 0
        for page in reader.pages:
            text = page.extract_text() or ""
            pages.append(text)
            length += len(text) + 2
            if length > max_chars:
                raise Problem("too-long")
    except (Problem, MemoryError):
        raise
    except Exception:  # whatever pypdf trips over in a damaged file
        raise Problem("broken") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise Problem("no-text")
    return text


def main(argv: list[str]) -> int:
    kind, max_chars, memory = argv[1], int(argv[2]), int(argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # pypdf logs a line for each damaged object it steps over: of no use to the person,
    # and a file made of many would fill the server's copy of this process's error output.
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    raw = sys.stdin.buffer.read()
    try:
        text = text_of_pdf(raw, max_chars) if kind == "pdf" else text_of_text(raw)
        if len(text) > max_chars:
            raise Problem("too-long")
        result = {"text": text}
    except Problem as problem:
        result = {"problem": problem.args[0]}
    except MemoryError:
        result = {"problem": "memory"}
    sys.stdout.write(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
