"""Text front end: normalisation, chunking, phoneme ids (golden lists with Piper's convention)."""

import logging

import pytest

from engine.errors import InputError
from engine.text import IdTable, normalize_text, split_chunks
from engine.text.normalize import MAX_TEXT_CHARS

ID_MAP = {"_": [0], "^": [1], "$": [2], " ": [3], "a": [14], "b": [15]}


def test_normalize_collapses_whitespace_and_strips_controls():
    assert normalize_text("  Hello\t\x00 wor\u200bld \x07 !  ") == "Hello world !"


def test_normalize_cleans_non_ascii_the_same_way_every_time():
    """Emoji become a space, format characters vanish, dashes and letters stay — on first sight and
    from the table's memory alike."""
    text = "Stop\u2014go \U0001F600 now\u200d!\u00a0Caf\u00e9 \x1b ok"
    want = "Stop\u2014go now! Caf\u00e9 ok"
    assert normalize_text(text) == want
    assert normalize_text(text) == want


def test_normalize_keeps_paragraph_breaks_and_applies_nfc():
    assert normalize_text("Cafe\u0301.\r\n\r\n\r\nNext") == "Caf\u00e9.\n\nNext"


def test_normalize_skips_passes_with_nothing_to_do_and_gives_what_the_full_passes_give():
    """Cleaning and collapsing run only when the text needs them (a chapter is normalised before
    its first sentence is phonemized); the result is always that of every pass, line by line."""
    import random
    import re
    import unicodedata

    from engine.text.normalize import _BLANK_LINES, _CLEAN

    spaces = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")

    def every_pass(text):
        text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).translate(_CLEAN)
        return "\n".join(spaces.sub(" ", line).strip() for line in _BLANK_LINES.sub("\n\n", text).split("\n")).strip()

    pieces = ["a", "B", " ", "  ", "\t", "\u00a0", "\u2003", "\u200a", "\u200b", "\u3000", "\n", "\r\n", "\r", "\u2028",
              "\u1680", "\x85", "\f", "\v", "\u202f", "e\u0301", "\U0001F600", "\x00", "\u200d", ".", "\n\n \n"]
    rng = random.Random(7)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert normalize_text(text) == every_pass(text), repr(text)


def test_normalize_rejects_non_string_and_huge_text():
    with pytest.raises(InputError, match="must be a string"):
        normalize_text(b"bytes")
    with pytest.raises(InputError, match="limit for one request"):
        normalize_text("a" * (MAX_TEXT_CHARS + 1))


def test_ids_follow_piper_convention():
    assert IdTable(ID_MAP)(["a", "b"]) == [
        1, 0,  # BOS PAD
        14, 0,  # a PAD
        15, 0,  # b PAD
        2,  # EOS
    ]


def test_unknown_phonemes_dropped_with_one_warning(caplog):
    with caplog.at_level(logging.WARNING):
        ids = IdTable(ID_MAP)(["a", "Ω", "Ω", "b"])
    assert ids == [1, 0, 14, 0, 15, 0, 2]
    assert sum("dropping phoneme 'Ω'" in r.message for r in caplog.records) == 1


def test_ids_past_num_symbols_are_dropped():
    assert IdTable(ID_MAP, num_symbols=15)(["a", "b"]) == [1, 0, 14, 0, 2]


def test_split_chunks_bounds_size_and_keeps_all_text():
    text = ("This is sentence number one. " * 200) + ("x" * 5000)
    chunks = list(split_chunks(text, max_chars=500))
    assert all(len(c) <= 500 for c in chunks)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Dr. Smith met Mr. and Mrs. Hart.", "Doctor Smith met Mister and Missus Hart."),
        ("St. Alban's Row, 5 Main St. today", "Saint Alban's Row, 5 Main Street today"),
        ("See No. 5 vs. No. 6, etc.", "See number 5 versus number 6, et cetera."),
        ("Apples, pears, etc. Then we left with Martin Luther King Jr. today.", "Apples, pears, et cetera. Then we left with Martin Luther King Junior today."),
        ("Cheap, i.e. good; e.g. this.", "Cheap, that is good; for example this."),
        ("The drum. Dr.Who", "The drum. Dr.Who"),
        ("Mr. and Mr\u017f. Smith, v\u017f. \u0131.e. them", "Mister and Mr\u017f. Smith, v\u017f. \u0131.e. them"),  # letters that only fold to ASCII
    ],
)
def test_english_abbreviations_are_spelled_out(text, expected):
    from engine.text.abbreviations import expand_abbreviations

    assert expand_abbreviations(text) == expected


def test_abbreviation_rules_run_only_where_their_abbreviation_occurs_with_the_same_result():
    """Each rule is skipped when a substring test finds none of its abbreviations: random texts
    of abbreviations, near misses and case changes give what running every rule gives."""
    import random

    from engine.text import abbreviations as ab

    def every_rule(text):
        text = ab._TITLE.sub(lambda m: ab._TITLES[m.group(1).lower()], text)
        text = ab._STREET.sub("Street", ab._SAINT.sub("Saint", text))
        text = ab._NUMBER.sub("number", text)
        text = ab._LATIN_RE.sub(lambda m: ab._LATIN[m.group(1).lower()] + ("." if ab._ends_sentence(text, m.end()) else ""), text)
        return ab._IE_EG.sub(lambda m: "that is" if m.group(1).lower() == "i.e" else "for example", text)

    pieces = ["Dr.", "dr.", "MRS.", "Mr", "St.", "st.", "No.", "no.", "NO.", "5", "vs.", "ETC.", "etc", "Jr.", "i.e.", "E.G.",
              "e.g", "Prof.", "Fr.", " ", " ", " ", "Smith", "the", ".", ",", "\n\n", "Then", "Approx.", "Mr\u017f.", "\u212a", "\u0130.e."]
    rng = random.Random(11)
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert ab.expand_abbreviations(text) == every_rule(text), repr(text)


def test_titles_no_longer_split_sentences(joe_cpu):
    from engine.config import SynthesisOptions

    segments = joe_cpu.segment("Dr. Ellis met Mr. Hart on St. Alban's Row.", SynthesisOptions())
    assert len(segments) == 1


def test_abbreviations_expand_the_same_one_paragraph_at_a_time():
    """Long texts expand paragraph by paragraph as espeak needs them: exactly the whole text's
    expansion, also where a rule looks past a paragraph's end."""
    from engine.bench import load_text
    from engine.text.abbreviations import expand_abbreviations, expand_paragraphs

    edges = ["Bought pens, paper, etc.", "no. 5 was next, etc.", "E.g. this one.", "Ask Dr.", "No. 7 won, vs.",
             "the end i.e.", "St.", "Main St. is long", "Prof. Smith and Mr.", "Capt. No. 3 sailed"]
    for text in [load_text("chapter"), load_text("long"), "\n\n".join(edges), "\n\n".join(reversed(edges))]:
        paragraphs = normalize_text(text).split("\n\n")
        assert "\n\n".join(expand_paragraphs(paragraphs)) == expand_abbreviations("\n\n".join(paragraphs))


def test_clause_cuts_only_where_espeak_surely_ends_a_clause():
    """After , ; : that follow a letter (or a letter and a closing quote), and after a sentence's
    . ! ? only when a capital follows: "e.g. this", "1, 2," and "Ok ," are never cut."""
    from engine.text.phonemize import clause_cuts, split_at

    text = 'Hello, world. Then e.g. this; and 1, 2, "quoted", done! Ok , then: fine'
    assert split_at(text, clause_cuts(text)) == ["Hello,", "world.", "Then e.g. this;", 'and 1, 2, "quoted",', "done!", "Ok , then:", "fine"]
    assert clause_cuts(", Abc") == clause_cuts(". Hello there") == clause_cuts('", Abc') == []  # nothing before the mark


def test_clause_groups_are_consecutive_and_as_even_as_the_cuts_allow():
    from engine.text.phonemize import clause_groups

    text = ("At 6:45 on a grey Tuesday, Doctor Ellis unlocked the lab, switched on all 12 monitors, and wondered"
            " aloud whether the new model could really speak 200 times faster.")
    two = clause_groups(text, most=2, least_chars=24)
    assert two == [text[:86], text[87:]]  # 86 and 77 characters: no other cut makes the longer shorter
    many = clause_groups(text, most=9, least_chars=24)
    assert " ".join(many) == text and len(many) == 3 and max(map(len, many)) == 77  # the last clause alone
    assert clause_groups(text, most=1, least_chars=24) == [text]
    assert clause_groups("Yes, no.", most=9, least_chars=24) == ["Yes, no."]  # too short to be worth a worker
