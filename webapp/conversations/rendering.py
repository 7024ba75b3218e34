"""Markdown to sanitized HTML for user text and model output.

``render_markdown`` turns CommonMark (plus GFM tables and strikethrough) into
HTML, highlights fenced code with Pygments (CSS classes only, see
the end of ``static/css/app.css``) and then passes the result through an nh3 allow-list,
so the returned ``Markup`` is safe to embed in a page.

Security notes:

* Raw HTML in the input is never interpreted (``html=False``): it is shown as
  text.
* Markdown images never load anything: they become an ordinary link whose text
  is the alt text (or the URL), so a message cannot embed tracking pixels or
  leak data through image URLs.
* Only ``http``, ``https`` and ``mailto`` URLs survive; relative URLs are
  dropped too, so model output cannot point at the app's own endpoints.

Cost: markdown-it-py and Pygments are pure Python and slow on dense markup (tens of
milliseconds per thousand characters of emphasis, brackets or highlighted code), and
under gevent nothing else runs while they work. So a text longer than
``MARKDOWN_PIECE_CHARS`` is rendered in pieces of at most that size, cut at blank lines
outside code fences, with a pause for other greenlets between pieces; a single block
(paragraph, code block) longer than that is shown as escaped plain text, not Markdown. A
reply being streamed re-renders only its unfinished tail, and a tail past
``STREAMING_TAIL_CHARS`` goes on as appended plain text (``StreamingRenderer``).

The parser and sanitizer are built once at import time, the code formatter
on first use (Pygments, about 1 MB, is imported only when a fenced block names
a language); all are safe to share between threads: every call gets a fresh
``env`` and token list.
"""

from __future__ import annotations

import functools
import html
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

if TYPE_CHECKING:
    from pygments.formatters import HtmlFormatter
    from pygments.lexer import Lexer

__all__ = ["MARKDOWN_PIECE_CHARS", "STREAMING_TAIL_CHARS", "StreamingRenderer",
           "message_html", "render_markdown"]

# The most text rendered as Markdown in one go: a text longer than this is rendered in
# pieces, and a block longer than this is shown as plain text. It bounds how long one
# render keeps other greenlets waiting (bench/markdown_stall.py measures it).
MARKDOWN_PIECE_CHARS = 16_000
# The most of an unfinished block re-rendered on each change of a streaming reply (about
# 100 lines of code, whose highlighted HTML is 8 times the text); past it, the block's
# new text is appended as plain text (StreamingRenderer) until the block ends.
STREAMING_TAIL_CHARS = 4_000
# The pause between two pieces: under gevent it lets the event loop serve other streams
# and requests (time.sleep(0) would only run greenlets already scheduled, no timers or I/O).
_PAUSE_SECONDS = 0.0001
# Code blocks larger than this are shown without highlighting: Pygments is
# the slowest part of rendering and a few lexers backtrack badly on odd input.
_MAX_HIGHLIGHT_CHARS = MARKDOWN_PIECE_CHARS
# Fence info strings longer than this are not worth a lexer lookup.
_MAX_LANG_CHARS = 40

_LANG_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_+-]")

_ALIGN_CLASSES = {"align-left", "align-center", "align-right"}


@functools.lru_cache(maxsize=256)
def _lexer_for(lang: str) -> Lexer | None:
    """Return a Pygments lexer for an explicit language name, or None.

    Never guesses. Unknown names are cached too (as None), so a stream of
    re-renders of the same message does not repeat the slow failed lookup.
    """
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        # stripnl=False keeps leading/trailing blank lines the author wrote.
        return get_lexer_by_name(lang, stripnl=False)
    except ClassNotFound:
        return None


@functools.cache
def _formatter() -> HtmlFormatter:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)


def _language_class(lang: str, lexer: Lexer) -> str:
    """The ``language-xxx`` suffix: the given name, else the lexer's alias."""
    safe = _LANG_UNSAFE_RE.sub("", lang)
    if safe != lang or not safe:
        aliases = getattr(lexer, "aliases", None) or [""]
        safe = _LANG_UNSAFE_RE.sub("", aliases[0])
    return safe


def _fence(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    code = token.content
    info = unescapeAll(token.info).strip() if token.info else ""
    lang = info.split(maxsplit=1)[0].lower() if info else ""

    lexer = None
    if lang and len(lang) <= _MAX_LANG_CHARS and len(code) <= _MAX_HIGHLIGHT_CHARS:
        lexer = _lexer_for(lang)

    if lexer is None:
        return '<pre class="code"><code>' + escapeHtml(code) + "</code></pre>\n"

    from pygments import highlight

    body = highlight(code, lexer, _formatter())
    css_lang = _language_class(lang, lexer)
    cls = f' class="language-{css_lang}"' if css_lang else ""
    return f'<pre class="code"><code{cls}>' + body + "</code></pre>\n"


def _code_block(
    self: Any, tokens: list[Token], idx: int, options: Any, env: Any
) -> str:
    # Indented code: no language, so plain text, styled like fences.
    return (
        '<pre class="code"><code>' + escapeHtml(tokens[idx].content) + "</code></pre>\n"
    )


def _image(self: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
    """Render ``![alt](src)`` as a link to ``src`` instead of an ``<img>``."""
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children, options, env).strip()
    src = token.attrGet("src") or ""
    text = escapeHtml(alt or src)

    # An image inside link text (``[![alt](img)](href)``) must not become a
    # nested <a>; the surrounding link is enough.
    depth = 0
    for prev in tokens[:idx]:
        if prev.type == "link_open":
            depth += 1
        elif prev.type == "link_close":
            depth -= 1
    if depth > 0 or not src:
        return text

    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(str(title))}"' if title else ""
    return f'<a href="{escapeHtml(str(src))}"{title_attr}>{text}</a>'


def _alignment_classes(state: StateCore) -> None:
    """Table cell alignment as a class (``align-right``), not an inline style the CSP blocks."""
    for token in state.tokens:
        if token.type in ("th_open", "td_open"):
            style = str(token.attrs.pop("style", ""))
            if style.startswith("text-align:"):
                token.attrSet("class", "align-" + style.removeprefix("text-align:"))


def _build_parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False, "breaks": True},
    ).enable(["table", "strikethrough"])
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _code_block)
    md.add_render_rule("image", _image)
    md.core.ruler.push("alignment_classes", _alignment_classes)
    return md


_MD = _build_parser()

_CLEANER = nh3.Cleaner(
    tags={
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
        "strong", "em", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "table", "thead", "tbody", "tr", "th", "td",
        "a", "span",
    },  # fmt: skip
    clean_content_tags={"script", "style"},
    attributes={
        "a": {"href", "title"},
        "span": {"class"},
        "code": {"class"},
        "pre": {"class"},
        "ol": {"start"},
        "th": set(),
        "td": set(),
    },
    allowed_classes={cell: _ALIGN_CLASSES for cell in ("th", "td")},
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


# Characters that make Markdown, or HTML, of a line of text (inline code, emphasis,
# strikethrough, links, escapes, entities, tags); a line without any of them is plain text.
_MARKUP_CHARS_RE = re.compile(r"[\\`~*_\[\]<>&]")


def render_markdown(text: str) -> Markup:
    """Render Markdown ``text`` to sanitized HTML wrapped in ``Markup``.

    Works on partial input (e.g. a streaming reply with an unclosed fence). A text longer
    than MARKDOWN_PIECE_CHARS is rendered piece by piece (see the module's docstring).
    """
    if not text:
        return Markup("")
    if len(text) <= MARKDOWN_PIECE_CHARS or _is_plain_line(text):
        return _render_piece(text)
    parts = []
    for piece in _pieces(text, MARKDOWN_PIECE_CHARS):
        parts.append(_render_piece(piece) if len(piece) <= MARKDOWN_PIECE_CHARS
                     else _plain_text_html(piece, "div"))
        time.sleep(_PAUSE_SECONDS)
    return Markup("".join(parts))


def _plain_text_html(text: str, element: str) -> Markup:
    """Text shown as it is, escaped, its line breaks kept (class plain-text).

    Element content needs only <, > and & escaped; quotes stay as they are, which keeps
    code that is full of them from growing on the wire.
    """
    return Markup(f'<{element} class="plain-text">{html.escape(text, quote=False)}</{element}>')


def _render_piece(text: str) -> Markup:
    if _is_plain_line(text):
        # Exactly what the parser and the sanitizer make of it, at a small part of the cost.
        return Markup(f"<p>{text.rstrip(' ')}</p>\n")
    return Markup(_CLEANER.clean(_MD.render(text, {})))


def _pieces(text: str, limit: int) -> Iterator[str]:
    """The text cut at blank lines outside code fences into pieces of at most limit
    characters, but for single blocks longer than that, which come whole."""
    start = cut = 0
    for end in [*_BlockEnds().scan(text), len(text)]:
        if end - start > limit and cut > start:
            yield text[start:cut]
            start = cut
        cut = end
    if start < len(text):
        yield text[start:]


def _is_plain_line(text: str) -> bool:
    """True for one line of plain text: a paragraph of itself, with nothing to escape.

    Starting with a letter, it starts no block (heading, list, quote, code, fence); being
    printable, it holds no line break, tab, control character or space other than " "
    (which the parser would strip or the sanitizer write as an entity); without
    _MARKUP_CHARS_RE's characters it holds no inline markup and no character that HTML
    escapes, but for quotes, which the parser escapes and the sanitizer writes back as is.
    """
    return text[0].isalpha() and text.isprintable() and not _MARKUP_CHARS_RE.search(text)


def message_html(message: Any) -> Markup:
    """The HTML of a message-like object (``content`` / ``content_html``).

    Uses the cached ``content_html`` (written only by ``render_markdown``)
    when present, otherwise renders ``content`` now. For use in templates.
    """
    cached = getattr(message, "content_html", None)
    if cached is not None:
        return Markup(cached)
    return render_markdown(getattr(message, "content", None) or "")


# Compile markdown-it's rule caches now, in one thread, so concurrent first
# calls never see a half-built cache.
render_markdown("# h\n\n*a* `b` [c](https://x.invalid) ~~d~~\n\n| a |\n|---|\n| b |\n")


class _BlockEnds:
    """Finds where the Markdown blocks of a growing text end: after each blank line
    outside a code fence. Reads each line once, however often the text grows."""

    def __init__(self) -> None:
        self.last = 0             # offset after the last blank line found
        self.in_fence = False
        self._scanned_upto = 0    # lines before this offset were read
        self._searched_upto = 0   # no line break before this offset since _scanned_upto

    def scan(self, text: str) -> Iterator[int]:
        """The offset after each blank line outside a fence not reported before."""
        while (end := text.find("\n", max(self._scanned_upto, self._searched_upto))) != -1:
            line = text[self._scanned_upto:end].strip()
            if line.startswith(("```", "~~~")):
                self.in_fence = not self.in_fence
            elif not line and not self.in_fence:
                self.last = end + 1
                yield self.last
            self._scanned_upto = end + 1
        self._searched_upto = len(text)


class StreamingRenderer:
    """Renders a growing text without re-rendering its finished blocks each time.

    Text before the last blank line outside a code fence is complete: it is rendered once,
    into ``blocks`` (only ever appended to), and only the rest, the unfinished ``tail``, is
    rendered again when the text grows. Blocks that span a blank line (a loose list) may
    render split while streaming; the final render of the whole text is exact.

    A tail longer than STREAMING_TAIL_CHARS is not rendered again: what it showed so far
    becomes a block, and the text it gains, up to the next block's end, is added to
    ``blocks`` as escaped plain text, piece by piece as it arrives. Each change then costs
    what it adds, on the server and on the wire, however long the block grows.
    """

    def __init__(self) -> None:
        self.blocks: list[str] = []  # HTML of text[:_done_upto], then of the plain run
        self.tail_html = Markup("")  # HTML of text[_tail_from:], unless in a plain run
        self._fed = 0             # length of the text of the last feed()
        self._done_upto = 0
        self._tail_from = 0
        self._plain_from: int | None = None  # in a plain run: where its unsent text starts
        self._ends = _BlockEnds()

    def feed(self, text: str) -> None:
        """Render text, which must start with the text of the previous call."""
        if len(text) == self._fed:
            return
        fed_before, self._fed = self._fed, len(text)
        new_ends = self._ends.scan(text)
        first_end = next(new_ends, None)
        for _ in new_ends:
            pass
        if first_end is not None and self._plain_from is not None:
            self.blocks.append(str(_plain_text_html(text[self._plain_from:first_end], "span")))
            self._plain_from, self._done_upto = None, first_end
        if self._ends.last > self._done_upto:
            self.blocks.append(str(render_markdown(text[self._done_upto:self._ends.last])))
            self._done_upto = self._ends.last
        if self._plain_from is None and len(text) - self._done_upto > STREAMING_TAIL_CHARS:
            self._start_plain_run(fed_before)
        if self._plain_from is None:
            self.tail_html, self._tail_from = render_markdown(text[self._done_upto:]), \
                self._done_upto
        elif len(text) > self._plain_from:
            self.blocks.append(str(_plain_text_html(text[self._plain_from:], "span")))
            self._plain_from = len(text)

    def _start_plain_run(self, fed_before: int) -> None:
        """Keep the tail as shown, as a block; what comes next is appended as plain text."""
        if self._tail_from == self._done_upto and self.tail_html:
            self.blocks.append(str(self.tail_html))
            self._plain_from = fed_before
        else:
            self._plain_from = self._done_upto
        self.tail_html = Markup("")
