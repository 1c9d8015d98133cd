"""ripen's ``wordwrap`` filter gives what Jinja's gives, on generated text (short and long
lines, runs of spaces, tabs, no-break spaces, long words and links, hyphens, blank lines)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment
from jinja2.filters import do_wordwrap

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


def test_a_short_line_keeps_its_indent_and_no_break_space_and_loses_a_trailing_blank() -> None:
    text = "  eingerückt \t\nkurz\xa0\n \nlang " + "wort " * 20
    assert wordwrap(ENVIRONMENT, text, 72) == do_wordwrap(ENVIRONMENT, text, 72) == (
        "  eingerückt\nkurz\xa0\n\nlang" + " wort" * 13 + "\n" + " ".join(["wort"] * 7))
