"""Jinja's ``wordwrap`` filter, with the same output, made cheap for lines that already fit.

The shipped plain-text parts are wrapped at 72 characters (``base.txt.j2``). Jinja's filter
hands every line to ``textwrap.wrap``, which costs ~35 µs even for a short line: a fifth of
the tick's rendering time (S1). A line no longer than the width that does not end in
whitespace comes out of ``textwrap.wrap`` as itself (its options keep tabs and inner
whitespace, and only a whitespace chunk at the end is dropped); this filter passes such
lines through. Longer lines are wrapped by ``textwrap``'s own greedy algorithm, written out
for the options the shipped templates use (long words and hyphens kept whole: a link stays
on its line), at a fraction of ``textwrap``'s cost; other options go to ``textwrap``.
``tests/unit/test_mail_rendering_cost.py`` compares it with Jinja's filter on generated text.
"""

from __future__ import annotations

import re
import textwrap
from bisect import bisect_right
from itertools import accumulate

from jinja2 import Environment, pass_environment


@pass_environment
def wordwrap(environment: Environment, s: str, width: int = 79,
             break_long_words: bool = True, wrapstring: str | None = None,
             break_on_hyphens: bool = True) -> str:
    """``jinja2.filters.do_wordwrap``'s signature and result."""
    if wrapstring is None:
        wrapstring = environment.newline_sequence
    lines = []
    for line in s.splitlines():
        if not line or (len(line) <= width and not line[-1].isspace()):
            lines.append(line)
            continue
        if break_long_words or break_on_hyphens or width <= 0:
            lines.append(wrapstring.join(textwrap.wrap(
                line, width=width, expand_tabs=False, replace_whitespace=False,
                break_long_words=break_long_words, break_on_hyphens=break_on_hyphens)))
        else:
            lines.append(wrapstring.join(_greedy(line, width)))
    return wrapstring.join(lines)


#: ``TextWrapper.wordsep_simple_re``: words and runs of (ASCII) whitespace, as chunks.
_CHUNKS = re.compile(r"([\t\n\x0b\x0c\r ]+)")


def _greedy(line: str, width: int) -> list[str]:
    """``textwrap.wrap(line, width, expand_tabs=False, replace_whitespace=False,
    break_long_words=False, break_on_hyphens=False)`` — its ``_wrap_chunks`` for these
    options (the shipped text parts' wrapping): a line takes chunks while they fit, found by
    bisecting the chunks' running lengths instead of adding them up one by one."""
    chunks = list(filter(None, _CHUNKS.split(line)))
    ends = list(accumulate(map(len, chunks), initial=0))  # ends[i]: length of chunks[:i]
    lines: list[str] = []
    position, count = 0, len(chunks)
    while position < count:
        if lines and not chunks[position].strip():
            position += 1  # a line after the first does not start with whitespace
            if position == count:
                break
        start = position
        end = bisect_right(ends, ends[start] + width, lo=start) - 1
        if end == start:  # a word longer than the width stays whole on its line
            end = start + 1
        position = end
        if not chunks[end - 1].strip():
            end -= 1  # nor ends with it
        if end > start:
            lines.append("".join(chunks[start:end]))
    return lines
