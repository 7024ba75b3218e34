"""Reading a 300-page PDF while replies stream: does it stall the worker's other streams?

Builds a 300-page PDF of prose in memory (harness/pdf_samples.py, nothing fetched), runs
the app as the Procfile does against harness/timed_upstream.py, and streams --streams
replies of --tokens tokens (20 ms apart) at once, twice: alone (the baseline), then while
the same worker reads the PDF --reads times in a row through POST /documents/check (the
read a send does too). It prints the spacing of the replies' updates at the client (median,
99th percentile, longest gap) in both rounds and their ratio, and how long each read took.

Then, in this process, the loop pause: a greenlet ticks every 10 ms while the PDF is read
by pypdf in the event loop, and through documents.DocumentReader (a child process).

    .venv/bin/python bench/document_extract.py
    .venv/bin/python bench/document_extract.py --streams 20 --reads 3

A figure, not a test: it asserts nothing. Results are in bench/README.md.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import io  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import _client as client  # noqa: E402
from _ticker import loop_pause  # noqa: E402

from harness import processes  # noqa: E402
from harness.pdf_samples import long_pdf  # noqa: E402
from webapp.conversations.documents import DocumentReader  # noqa: E402

MAX_CHARS = 2_000_000  # the whole PDF is read (1.4 million characters), not cut at a limit


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field "document"; (body, content type)."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"document\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def gaps(results: list[client.StreamResult]) -> list[float]:
    """Every gap between two updates arriving at the client (an update brings the tokens
    of about 50 ms), over all the streams."""
    found = []
    for result in results:
        times = sorted({t for t in result.arrivals if t is not None})
        found += [b - a for a, b in zip(times, times[1:])]
    return found


def stream_round(port: int, users: list[dict], tokens: int, tag: str,
                 during=None) -> tuple[list[client.StreamResult], list]:
    """Stream one reply per user at once; run during() meanwhile (its results returned)."""
    streams = [gevent.spawn(client.relay_round, port, user, f"{tag} {index}", tokens, 120,
                            client.Counter()) for index, user in enumerate(users)]
    extra = during() if during is not None else []
    return [stream.get() for stream in streams], extra


def describe(name: str, results: list[client.StreamResult]) -> tuple[float, float, float]:
    spacing = gaps(results)
    failed = [result.error for result in results if result.error]
    p50, p99, top = client.pct(spacing, 50), client.pct(spacing, 99), max(spacing)
    print(f"  {name:<26} update spacing p50 {p50 * 1000:6.1f} ms, p99 {p99 * 1000:6.1f} ms, "
          f"longest {top * 1000:6.0f} ms"
          + (f"  ({len(failed)} failed: {failed[0]})" if failed else ""))
    return p50, p99, top


def worker_round(args, pdf: bytes) -> None:
    processes.raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="document-extract-"))
    upstream = app = None
    try:
        upstream, base = processes.start_upstream(args.tokens, 0.02, 0.1, "k", False,
                                                  workdir / "upstream.log")
        port = processes.free_port()
        app = processes.start_app({"DATABASE_URL": f"sqlite:///{workdir}/bench.db",
                                   "REGOLO_BASE_URL": base, "REGOLO_API_KEY": "k",
                                   "SECRET_KEY": "bench", "ACCESS_LOG": "0",
                                   "MAX_DOCUMENT_CHARS": str(MAX_CHARS)},
                                  port, workdir / "app.log")
        users = [client.create_user(port, f"u{index}", 60) for index in range(args.streams)]
        body, content_type = multipart("report.pdf", pdf)

        def read_pdf() -> list[tuple[int, float]]:
            gevent.sleep(0.3)  # the replies are streaming by now
            took = []
            for _ in range(args.reads):
                started = time.monotonic()
                status, _, _ = client.simple_request(
                    port, "POST", "/documents/check",
                    {"Cookie": users[0]["cookie"], "X-CSRFToken": users[0]["csrf"],
                     "Content-Type": content_type}, body, timeout=120)
                took.append((status, time.monotonic() - started))
            return took

        print(f"{args.streams} replies of {args.tokens} tokens, 20 ms apart, through one "
              f"gevent worker:")
        stream_round(port, users, args.tokens, "warm up")
        baseline, _ = stream_round(port, users, args.tokens, "baseline")
        loaded, reads = stream_round(port, users, args.tokens, "loaded", read_pdf)
        base = describe("alone (baseline)", baseline)
        with_reads = describe(f"while reading the PDF x{args.reads}", loaded)
        print("  ratio to the baseline:     p50 x{:.2f}, p99 x{:.2f}, longest x{:.2f}".format(
            *(b / a for a, b in zip(base, with_reads))))
        print("  reads: " + ", ".join(f"HTTP {status} in {took:.2f} s" for status, took in reads))
    finally:
        processes.stop_process(app)
        processes.stop_process(upstream)
        shutil.rmtree(workdir, ignore_errors=True)


def in_process(pdf: bytes) -> None:
    from pypdf import PdfReader

    def in_the_loop():
        return sum(len(page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages)

    reader = DocumentReader(MAX_CHARS, 512 * 1024 * 1024, 60, 1)
    print("In this process, a greenlet ticking every 10 ms:")
    def in_a_child():
        return reader.read("report.pdf", io.BytesIO(pdf), len(pdf))

    for name, read in (("pypdf in the event loop", in_the_loop),
                       ("DocumentReader (a child)", in_a_child)):
        took, pause = loop_pause(read)
        print(f"  {name:<26} {took:.2f} s in all, longest pause of the loop "
              f"{pause * 1000:.0f} ms")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10, help="replies streaming at once")
    parser.add_argument("--tokens", type=int, default=300, help="tokens per reply (20 ms apart)")
    parser.add_argument("--reads", type=int, default=2, help="reads of the PDF, one after another")
    args = parser.parse_args(argv)
    pdf = long_pdf(300)
    print(f"A PDF of 300 pages, {len(pdf) / 1e6:.2f} MB, about 1.4 million characters of text")
    worker_round(args, pdf)
    in_process(pdf)


if __name__ == "__main__":
    main()
