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

The parser and sanitizer are built once at import time, the code formatter
on first use (Pygments, about 1 MB, is imported only when a fenced block names
a language); all are safe to share between threads: every call gets a fresh
``env`` and token list.
"""

from __future__ import annotations

import functools
import re
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

__all__ = ["message_html", "render_markdown"]

# Code blocks larger than this are shown without highlighting: Pygments is
# the slowest part of rendering and a few lexers backtrack badly on odd input.
_MAX_HIGHLIGHT_CHARS = 100_000
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

    Works on partial input (e.g. a streaming reply with an unclosed fence).
    """
    if not text:
        return Markup("")
    if _is_plain_line(text):
        # Exactly what the parser and the sanitizer make of it, at a small part of the cost.
        return Markup(f"<p>{text.rstrip(' ')}</p>\n")
    html = _MD.render(text, {})
    return Markup(_CLEANER.clean(html))


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



class StreamingRenderer:
    """Renders a growing text without re-rendering its finished blocks each time.

    Text before the last blank line outside a code fence is complete: it is rendered once,
    into ``blocks`` (only ever appended to), and only the rest, the unfinished ``tail``, is
    rendered again when the text grows. Blocks that span a blank line (a loose list) may
    render split while streaming; the final render of the whole text is exact.
    """

    def __init__(self) -> None:
        self.blocks: list[str] = []  # HTML of text[:_done_upto], one piece per finished run
        self.tail_html = Markup("")  # HTML of text[_done_upto:]
        self._fed = 0             # length of the text of the last feed()
        self._done_upto = 0
        self._scanned_upto = 0    # lines before this offset were scanned for fences
        self._in_fence = False
        self._last_break = 0      # offset after the last blank line outside a fence

    def feed(self, text: str) -> None:
        """Render text, which must start with the text of the previous call."""
        if len(text) == self._fed:
            return
        self._fed = len(text)
        self._scan(text)
        if self._last_break > self._done_upto:
            self.blocks.append(str(render_markdown(text[self._done_upto:self._last_break])))
            self._done_upto = self._last_break
        self.tail_html = render_markdown(text[self._done_upto:])

    def _scan(self, text: str) -> None:
        while (end := text.find("\n", self._scanned_upto)) != -1:
            line = text[self._scanned_upto:end].strip()
            if line.startswith(("```", "~~~")):
                self._in_fence = not self._in_fence
            elif not line and not self._in_fence:
                self._last_break = end + 1
            self._scanned_upto = end + 1
