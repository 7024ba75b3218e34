"""PDFs made in memory for tests and benchmarks: pages of text, pages without text.

Written by hand (a few objects, a cross-reference table) so that nothing is fetched and no
PDF writer is needed; pypdf reads them as it reads any PDF.
"""

from __future__ import annotations

import zlib


def _escaped(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _page_stream(lines: list[str]) -> bytes:
    """A page's content: each line of text, 14 points below the one before."""
    body = ["BT", "/F1 11 Tf", "14 TL", "50 790 Td"]
    for line in lines:
        body.append(f"({_escaped(line)}) '")
    body.append("ET")
    return zlib.compress("\n".join(body).encode("latin-1"))


def pdf_of_pages(pages: list[list[str]]) -> bytes:
    """A PDF whose pages hold these lines of text (latin-1); an empty list is a page with
    no text at all (a grey square), as a scanned page has."""
    return _pdf([_page_stream(lines) if lines else zlib.compress(b"0.5 g 0 0 100 100 re f")
                 for lines in pages])


def _pdf(contents: list[bytes]) -> bytes:
    """A PDF of one page per compressed content stream, Helvetica as its font /F1."""
    objects: list[bytes] = []
    count = len(contents)
    kids = " ".join(f"{4 + 2 * index} 0 R" for index in range(count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   b"/Encoding /WinAnsiEncoding >>")
    for index, content in enumerate(contents):
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                       f"/Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {5 + 2 * index} 0 R >>".encode())
        objects.append(f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode()
                       + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def text_pdf(*page_texts: str) -> bytes:
    """A PDF with one page per text given, its lines as the text's lines."""
    return pdf_of_pages([text.splitlines() for text in page_texts])


def long_pdf(page_count: int = 300, lines_per_page: int = 50) -> bytes:
    """A PDF of many full pages of prose, like a long report."""
    line = ("Section {page}.{row}: the quarterly figures were reviewed and the committee "
            "agreed on the next steps.")
    return pdf_of_pages([[line.format(page=page, row=row) for row in range(lines_per_page)]
                         for page in range(1, page_count + 1)])


def encrypted_pdf(password: str = "secret") -> bytes:
    """A PDF that opens only with a password."""
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf("Top secret plans."))))
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def bomb_pdf(decompressed_bytes: int) -> bytes:
    """A small PDF whose one page's content unpacks to decompressed_bytes of text
    operators (a few hundred kilobytes packed): built to exhaust a reader's memory."""
    line = b"(spam) Tj\n"
    return _pdf([zlib.compress(b"BT /F1 11 Tf 50 790 Td\n"
                               + line * (decompressed_bytes // len(line)) + b"ET", 9)])
