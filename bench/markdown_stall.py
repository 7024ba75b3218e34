"""How long rendering a huge text as Markdown pauses the gevent event loop (every open stream).

Renders a few large texts in one go (how every text was rendered before pieces) and with
render_markdown (in pieces of at most MARKDOWN_PIECE_CHARS with a pause between them,
plain text for a block past that size) while a greenlet ticks every 10 ms, and prints
the time each took and the longest pause between two ticks. Then streams a huge code
block through StreamingRenderer, 500 characters per change, and prints the bytes the
changes carry against the text's size.

    .venv/bin/python bench/markdown_stall.py

A figure, not a test: it asserts nothing.
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from _ticker import loop_pause  # noqa: E402

from webapp.conversations import rendering  # noqa: E402

TEXTS = {
    "100,000 characters of *emphasis* in paragraphs":
        "\n\n".join(["*a* b " * 100] * 166),
    "100,000 characters of *emphasis* in one paragraph": "*a* b " * 16_666,
    "200,000 characters of prose with `code` and links, in one paragraph":
        "Words with `code` and a [link](https://example.com). " * 3_800,
    "200,000 characters of code in one fence":
        "```python\n" + "".join(f"value_{i} = compute({i})\n" for i in range(8_000)) + "```",
}



def streamed_bytes(text: str, step: int) -> int:
    """Bytes of HTML the changes of a reply streamed step characters at a time carry."""
    renderer, sent, shown_tail = rendering.StreamingRenderer(), 0, ""
    for end in range(step, len(text) + step, step):
        before = len(renderer.blocks)
        renderer.feed(text[:end])
        sent += sum(len(block) for block in renderer.blocks[before:])
        if renderer.tail_html != shown_tail:
            shown_tail = renderer.tail_html
            sent += len(shown_tail)
    return sent


def main() -> None:
    for name, text in TEXTS.items():
        print(name)
        for how, render in (("in one go", rendering._render_piece),
                            ("render_markdown", rendering.render_markdown)):
            took, pause = loop_pause(lambda: render(text))
            print(f"  {how:>16}: {took:.2f} s, longest pause of the loop {pause * 1000:.0f} ms")
    code = "```python\n" + "".join(f"value_{i} = compute({i}, 'x')\n" for i in range(30_000))
    started = time.perf_counter()
    sent = streamed_bytes(code, 500)
    print(f"a code block of {len(code):,} characters streamed 500 at a time: changes carry "
          f"{sent / len(code):.2f} times its size, {time.perf_counter() - started:.1f} s "
          "of rendering")


if __name__ == "__main__":
    main()
