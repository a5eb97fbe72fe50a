"""English abbreviations that end in a period, spelled out before phonemization.

espeak-ng takes the period of "Dr." or "Mr." for a sentence end, so "Dr. Smith" is spoken as two
sentences with a pause and a falling tone in between (piper-tts behaves the same). Expanding the
common titles and Latin abbreviations keeps the sentence whole. Applied to English voices only.
"""

from __future__ import annotations

import re
from typing import Iterator, Sequence

_TITLES = {
    "mr": "Mister", "mrs": "Missus", "ms": "Miz", "dr": "Doctor", "prof": "Professor", "sgt": "Sergeant",
    "capt": "Captain", "lt": "Lieutenant", "col": "Colonel", "gen": "General", "gov": "Governor",
    "rev": "Reverend", "hon": "Honorable", "fr": "Father",
}
# these may also end a sentence ("… and so on, etc. Then …"): their period stays when it does
_LATIN = {"vs": "versus", "etc": "et cetera", "approx": "approximately", "dept": "department", "sr": "Senior", "jr": "Junior"}



def _any_case(words) -> str:
    """An alternation of `words` in any ASCII case. Not re.IGNORECASE: that also folds "ſ" to
    "s" and "K" (Kelvin) to "k", and "Mrſ." then matched a title that is not in the table."""
    return "|".join("".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word) for word in words)


_TITLE = re.compile(rf"\b({_any_case(_TITLES)})\.(?=\s)")
_SAINT = re.compile(r"\bSt\.(?=\s+[A-Z])")
_STREET = re.compile(r"\bSt\.")
_NUMBER = re.compile(r"\bNo\.(?=\s*\d)")
_LATIN_RE = re.compile(rf"\b({_any_case(_LATIN)})\.")
_IE_EG = re.compile(rf"\b({_any_case(['i.e', 'e.g'])})\.")


def _ends_sentence(text: str, end: int) -> bool:
    """The next word starts with a capital, or nothing follows."""
    rest = text[end:].lstrip()
    return not rest or rest[0].isupper()


_TITLE_MARKS = tuple(f"{t}." for t in _TITLES)
_LATIN_MARKS = tuple(f"{t}." for t in _LATIN)


def expand_abbreviations(text: str) -> str:
    """Each rule runs only where its abbreviation occurs: a substring test is far cheaper than a
    regular expression's scan (a chapter's paragraphs: 2.3 → 0.4 ms on the CI machine), and no
    expansion writes another rule's abbreviation, so testing the original text is enough."""
    lower = text.lower()
    if any(mark in lower for mark in _TITLE_MARKS):
        text = _TITLE.sub(lambda m: _TITLES[m.group(1).lower()], text)
    if "St." in text:
        text = _SAINT.sub("Saint", text)
        text = _STREET.sub("Street", text)
    if "No." in text:
        text = _NUMBER.sub("number", text)
    if any(mark in lower for mark in _LATIN_MARKS):
        text = _LATIN_RE.sub(lambda m: _LATIN[m.group(1).lower()] + ("." if _ends_sentence(text, m.end()) else ""), text)
    if "i.e." in lower or "e.g." in lower:
        text = _IE_EG.sub(lambda m: "that is" if m.group(1).lower() == "i.e" else "for example", text)
    return text


CONTEXT_CHARS = 24
"""How much of the next paragraph the rules can look at past a paragraph's end: its first word
(is it capitalised, a number after "No."), after the rules have rewritten it."""


def expand_paragraphs(paragraphs: Sequence[str]) -> Iterator[str]:
    """`expand_abbreviations` of the paragraphs joined by blank lines, one paragraph at a time, so
    a long text's first paragraphs reach espeak before the rest is read (2.6 ms of a chapter on
    the CI machine). Each is expanded with the start of the next after it: no rule matches across
    a blank line, so that is all of the following text any rule sees."""
    for i, paragraph in enumerate(paragraphs):
        if i + 1 == len(paragraphs):
            yield expand_abbreviations(paragraph)
            continue
        expanded = expand_abbreviations(f"{paragraph}\n\n{paragraphs[i + 1][:CONTEXT_CHARS]}")
        yield expanded[: expanded.rindex("\n\n")]
