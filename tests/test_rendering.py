"""Tests for webapp.conversations.rendering.render_markdown."""

from __future__ import annotations

import re
import threading
from html import unescape

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from webapp.conversations import rendering
from webapp.conversations.rendering import StreamingRenderer, message_html, render_markdown

REL = 'rel="noopener noreferrer nofollow"'


def html(text: str) -> str:
    return str(render_markdown(text))


def tags_named(out: str, name: str) -> list[str]:
    """Every start tag ``<name ...>`` in ``out`` (case-insensitive)."""
    return re.findall(rf"<{name}\b[^>]*>", out, flags=re.IGNORECASE)


# --- basic markdown -------------------------------------------------------


def test_paragraphs_and_line_breaks() -> None:
    out = html("first line\nsecond line\n\nnew paragraph")
    assert out.count("<p>") == 2
    assert "first line<br>" in out
    assert "<p>new paragraph</p>" in out


def test_bullet_list() -> None:
    out = html("- one\n- two\n")
    assert "<ul>" in out
    assert "<li>one</li>" in out and "<li>two</li>" in out


def test_numbered_list_keeps_start() -> None:
    out = html("3. three\n4. four\n")
    assert '<ol start="3">' in out
    assert "<li>three</li>" in out


def test_gfm_table_with_alignment() -> None:
    out = html("| a | b |\n|:--|--:|\n| 1 | 2 |\n")
    assert "<table>" in out
    assert '<th class="align-left">a</th>' in out
    assert '<td class="align-right">2</td>' in out
    assert "style=" not in out


def test_strikethrough_emphasis_and_inline_code() -> None:
    out = html("~~gone~~ **bold** *it* `x < y`")
    assert "<s>gone</s>" in out or "<del>gone</del>" in out
    assert "<strong>bold</strong>" in out
    assert "<em>it</em>" in out
    assert "<code>x &lt; y</code>" in out


# --- code blocks ----------------------------------------------------------


def test_python_fence_is_highlighted() -> None:
    out = html("```python\ndef f(x):\n    return x\n```\n")
    assert '<pre class="code"><code class="language-python">' in out
    assert '<span class="k">def</span>' in out
    assert '<span class="nf">f</span>' in out
    assert "style=" not in out  # classes only, no inline styles


def test_unknown_language_fence_is_plain_escaped_text() -> None:
    out = html("```nosuchlang\nif a < b: <span>\n```\n")
    assert '<pre class="code"><code>' in out
    assert "language-" not in out
    assert "<span" not in out
    assert "if a &lt; b: &lt;span&gt;" in out


def test_fence_without_language_is_not_guessed() -> None:
    out = html("```\ndef f(): pass\n```\n")
    assert '<pre class="code"><code>def f(): pass' in out
    assert "<span" not in out


def test_language_name_cannot_inject_attributes() -> None:
    out = html('```python" onload="x\nprint(1)\n```\n')
    for tag in re.findall(r"<[^>]+>", out):
        assert "onload" not in tag
        assert tag.count('"') % 2 == 0
    assert '<pre class="code"><code>print(1)' in out


def test_language_class_is_sanitized() -> None:
    out = html("```c#\nint x;\n```\n")
    classes = re.findall(r'class="language-([^"]*)"', out)
    assert classes and all(re.fullmatch(r"[A-Za-z0-9_+-]+", c) for c in classes)


def test_unclosed_fence_renders_partial_stream() -> None:
    out = html("Here you go:\n\n```python\ndef f(")
    assert "<p>Here you go:</p>" in out
    assert '<code class="language-python">' in out
    assert '<span class="k">def</span>' in out


# --- sanitizing -----------------------------------------------------------


def test_script_is_shown_as_text() -> None:
    out = html("<script>alert(1)</script>")
    assert "&lt;script&gt;" in out
    assert "<script" not in out.lower()


def test_raw_img_is_shown_as_text() -> None:
    out = html("<img src=x onerror=alert(1)>")
    assert "&lt;img" in out
    assert tags_named(out, "img") == []
    for tag in re.findall(r"<[^>]+>", out):
        assert "onerror" not in tag


def test_html_comment_is_not_a_comment() -> None:
    out = html("a <!-- secret --> b")
    assert "<!--" not in out


def test_javascript_link_has_no_href() -> None:
    for src in ("[x](javascript:alert(1))", "[x](JaVaScRiPt:alert(1))", "<javascript:alert(1)>"):
        out = html(src)
        for tag in tags_named(out, "a"):
            assert "javascript:" not in tag.lower()
        assert 'href="javascript' not in out.lower()


def test_links_get_rel_and_keep_safe_href() -> None:
    out = html("[site](https://example.com/a?b=1) and <mailto:me@example.com>")
    assert '<a href="https://example.com/a?b=1" ' + REL + ">site</a>" in out
    assert 'href="mailto:me@example.com"' in out
    assert all(REL in tag for tag in tags_named(out, "a"))


def test_relative_and_data_links_lose_href() -> None:
    out = html("[a](/logout) [b](data:text/html,hi)")
    anchors = tags_named(out, "a")
    assert len(anchors) == 1  # data: is rejected by markdown-it itself
    assert "href" not in anchors[0]


def test_markdown_image_becomes_link_not_img() -> None:
    out = html('![a cat](https://example.com/cat.png "Cat")')
    assert tags_named(out, "img") == []
    assert (
        '<a href="https://example.com/cat.png" title="Cat" ' + REL + ">a cat</a>"
    ) in out


def test_markdown_image_without_alt_shows_url() -> None:
    out = html("![](https://example.com/pixel.gif)")
    assert tags_named(out, "img") == []
    assert ">https://example.com/pixel.gif</a>" in out


def test_data_uri_image_does_not_keep_href() -> None:
    out = html("![x](data:image/png;base64,AAAA)")
    assert tags_named(out, "img") == []
    assert "data:" not in "".join(tags_named(out, "a"))


def test_image_inside_link_is_not_nested_anchor() -> None:
    out = html("[![logo](https://example.com/l.png)](https://example.com/)")
    assert tags_named(out, "img") == []
    assert len(tags_named(out, "a")) == 1
    assert 'href="https://example.com/"' in out


# --- return type ----------------------------------------------------------


def test_result_is_markup() -> None:
    result = render_markdown("**hi**")
    assert isinstance(result, Markup)
    # Markup is not escaped again when formatted into a template string.
    assert Markup("<div>{}</div>").format(result).startswith("<div><p><strong>")


def test_empty_string_is_empty_markup() -> None:
    result = render_markdown("")
    assert isinstance(result, Markup)
    assert result == ""


def test_concurrent_calls_agree() -> None:
    doc = "# T\n\n| a |\n|---|\n| 1 |\n\n```python\nx = 1\n```\n\n- [l](https://e.x)\n"
    expected = html(doc)
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(20):
            out = html(doc)
            with lock:
                results.append(out)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 160
    assert all(r == expected for r in results)


def test_message_html_uses_cache_then_renders() -> None:
    class Msg:
        def __init__(self, content: str, content_html: str | None) -> None:
            self.content = content
            self.content_html = content_html

    cached = message_html(Msg("**x**", "<p>cached</p>"))
    assert isinstance(cached, Markup) and cached == "<p>cached</p>"
    fresh = message_html(Msg("**x** <b>", None))
    assert isinstance(fresh, Markup)
    assert "<strong>x</strong> &lt;b&gt;" in fresh
    assert message_html(Msg("", None)) == ""


def streamed_html(renderer: StreamingRenderer, text: str) -> str:
    renderer.feed(text)
    return "".join(renderer.blocks) + str(renderer.tail_html)


def test_streaming_renderer_matches_a_full_render_at_the_end() -> None:
    text = ("Intro with **bold**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
            "```python\ndef f(x):\n\n    return x\n```\n\nLast *line*.")
    renderer = StreamingRenderer()
    partials = [streamed_html(renderer, text[:end]) for end in range(1, len(text) + 1, 7)]
    assert streamed_html(renderer, text) == str(render_markdown(text))
    assert "<table>" in partials[-1] and "<script" not in "".join(partials)


def test_streaming_renderer_renders_each_finished_block_once() -> None:
    renderer = StreamingRenderer()
    renderer.feed("One.\n\nTw")
    assert renderer.blocks == ["<p>One.</p>\n"] and renderer.tail_html == "<p>Tw</p>\n"
    tail = renderer.tail_html
    renderer.feed("One.\n\nTw")  # the same text: nothing is rendered again
    assert renderer.tail_html is tail
    renderer.feed("One.\n\nTwo.\n\nThr")
    assert renderer.blocks == ["<p>One.</p>\n", "<p>Two.</p>\n"]
    assert renderer.tail_html == "<p>Thr</p>\n"


def test_streaming_renderer_keeps_a_fence_with_blank_lines_whole() -> None:
    renderer = StreamingRenderer()
    renderer.feed("```python\nx = 1\n\n")
    html = streamed_html(renderer, "```python\nx = 1\n\ny = 2\n```\n")
    assert html.count("<pre") == 1


# Letters, spaces and punctuation, now and then a character that could make it Markdown.
PLAIN_CHARS = st.sampled_from(list("abcXYZ  0123456789 !\"#$%'()+,-./:;=?@^{|}") + ["é", "中"])
ANY_CHARS = st.sampled_from(list("&*<>[\\]_`~") + ["\n", "\t", "\r", "\x00", "\xa0", "\u2028",
                                                  "\u200d", "\u3000", "ß", "ﬁ", "\U0001f600",
                                                  "\u0301"])


@settings(max_examples=500, deadline=None)
@given(st.text(st.one_of(PLAIN_CHARS, PLAIN_CHARS, PLAIN_CHARS, ANY_CHARS), max_size=30))
def test_plain_lines_render_exactly_as_the_parser_renders_them(text) -> None:
    for line in ("Word " + text, text):
        if line:
            assert str(render_markdown(line)) == rendering._CLEANER.clean(
                rendering._MD.render(line, {}))


def test_a_plain_line_skips_the_parser() -> None:
    assert rendering._is_plain_line('Plain words, "quoted" (and more): 1 + 2 = 3!')
    for text in ("1. item", "# title", "a *b*", "a\nb", "a\xa0b", "a &amp; b", "a <b>", " a"):
        assert not rendering._is_plain_line(text), text


# Text past the Markdown size limits: rendered in pieces, or shown as plain text.
PIECE = rendering.MARKDOWN_PIECE_CHARS


def test_a_long_text_of_ordinary_blocks_is_still_markdown() -> None:
    paragraphs = [f"Paragraph {i} with *emphasis* and `code`." for i in range(PIECE // 20)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 2 * PIECE
    out = html(text)
    assert out.count("<em>emphasis</em>") == len(paragraphs)
    assert out.count("<p>") == len(paragraphs) and "plain-text" not in out


def test_a_block_past_the_limit_is_escaped_plain_text_and_the_rest_markdown() -> None:
    block = "A <script>alert(1)</script> *not emphasis* line.\n" * (PIECE // 40)
    out = html("Before *this*.\n\n" + block + "\nAfter **that**.")
    assert "<p>Before <em>this</em>.</p>" in out and "<strong>that</strong>" in out
    assert '<div class="plain-text">A &lt;script&gt;alert(1)&lt;/script&gt; *not emphasis*' in out
    assert "<script" not in out and "<em>not" not in out


def test_a_code_block_past_the_limit_is_kept_whole_as_plain_text() -> None:
    code = "```python\n" + "x = 1\n\n" * PIECE + "```\n\nDone."
    out = html(code)
    assert out.count('class="plain-text"') == 1 and out.endswith("<p>Done.</p>\n")


def sent_while_streaming(text: str, step: int) -> tuple[int, str]:
    """What the events of a reply streamed step characters at a time carry (finished
    blocks once, the tail each time it changes) and the HTML shown at the end."""
    renderer, sent, shown_tail = StreamingRenderer(), 0, ""
    for end in range(step, len(text) + step, step):
        before = len(renderer.blocks)
        renderer.feed(text[:end])
        sent += sum(map(len, renderer.blocks[before:]))
        if renderer.tail_html != shown_tail:
            shown_tail = renderer.tail_html
            sent += len(shown_tail)
    return sent, "".join(renderer.blocks) + str(renderer.tail_html)


def visible(html_text: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html_text))


def test_a_huge_streamed_block_costs_what_it_adds() -> None:
    paragraph = "Words *and* words <b> & more, on one long line. " * 20_000
    code = "```python\n" + "".join(f"value_{i} = compute({i}, 'x')\n" for i in range(30_000))
    for text in (paragraph, code):
        sent, shown = sent_while_streaming(text, step=500)
        assert sent < 2 * len(text)
        assert visible(shown).replace("```python\n", "") \
            .endswith(text[-1000:]) and "<b>" not in shown
    assert "value_29999 = compute(29999, 'x')" in shown


def test_a_streamed_block_goes_back_to_markdown_after_its_end() -> None:
    text = "```\n" + "line\n" * rendering.STREAMING_TAIL_CHARS + "```\n\nAfter *this*.\n"
    sent, shown = sent_while_streaming(text, step=100)
    assert shown.endswith("<p>After <em>this</em>.</p>\n")
    assert "".join(visible(shown).split()).count("line") == rendering.STREAMING_TAIL_CHARS
