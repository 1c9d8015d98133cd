"""Cheaper mail rendering that changes nothing: ripen's ``wordwrap`` filter gives what Jinja's
gives on generated text (short and long lines, runs of spaces, tabs, no-break spaces, long
words and links, hyphens, blank lines); a style block of only @-rules is not inlined."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment
from jinja2.filters import do_wordwrap

from engine.mail.render import inline_css, only_at_rules
from engine.mail.wrap import wordwrap

WORDS = st.sampled_from(["a", "Wort", "Konstruktionsleiter", "https://ripen.example/c/" + "x" * 60,
                         "re-use", "", " ", "  ", "\t", "\xa0", "Ä-ö", "—", "\x0c"])
LINE = st.lists(WORDS, max_size=40).map(" ".join)
TEXT = st.lists(LINE, max_size=8).map("\n".join)
ENVIRONMENT = Environment(autoescape=True)  # the filter is the same either way


@settings(max_examples=400, deadline=None)
@given(TEXT, st.sampled_from([10, 40, 72]), st.booleans(), st.booleans(),
       st.sampled_from([None, "\n", "\r\n"]))
def test_the_same_text_as_jinjas_wordwrap(text: str, width: int, break_long: bool,
                                          hyphens: bool, wrapstring: str | None) -> None:
    assert wordwrap(ENVIRONMENT, text, width, break_long, wrapstring, hyphens) == do_wordwrap(
        ENVIRONMENT, text, width, break_long, wrapstring, hyphens)


@settings(max_examples=600, deadline=None)
@given(TEXT, st.integers(min_value=1, max_value=90))
def test_the_same_text_as_jinjas_wordwrap_with_words_and_links_kept_whole(
        text: str, width: int) -> None:
    """The options base.txt.j2 uses: ripen's own greedy wrapping, not textwrap's."""
    assert wordwrap(ENVIRONMENT, text, width, False, None, False) == do_wordwrap(
        ENVIRONMENT, text, width, False, None, False)


def test_a_short_line_keeps_its_indent_and_no_break_space_and_loses_a_trailing_blank() -> None:
    text = "  eingerückt \t\nkurz\xa0\n \nlang " + "wort " * 20
    assert wordwrap(ENVIRONMENT, text, 72) == do_wordwrap(ENVIRONMENT, text, 72) == (
        "  eingerückt\nkurz\xa0\n\nlang" + " wort" * 13 + "\n" + " ".join(["wort"] * 7))


HEAD = '<html><head><style>{css}</style></head><body><p class="x">Hallo</p></body></html>'


def test_a_style_block_of_only_media_rules_is_left_as_written() -> None:
    """Nothing to inline: the mail is not parsed and written again (the shipped templates)."""
    dark = "/* dark */ @media (prefers-color-scheme: dark) { .x { color: #fff !important; } }"
    html = HEAD.format(css=dark + " @import url(x.css);")
    assert inline_css(html) is html
    assert only_at_rules("@media print { a { b: c } }\n@font-face { font-family: F; }")


def test_a_plain_rule_is_inlined_and_the_media_rules_stay_in_the_block() -> None:
    html = HEAD.format(css="p.x { color: #123456 } @media (max-width: 600px) { .x { "
                           "padding: 0 } }")
    inlined = inline_css(html)
    assert 'style="color: #123456' in inlined.replace(";", "")
    assert "@media (max-width: 600px)" in inlined
    for plain in ("p { a: b }", "@media x { p { a: b } } p { a: b }", "/* c */ p {}"):
        assert not only_at_rules(plain), plain
