"""Reading notes: every bad input is one DebriefError line; good inputs parse; sentences quote."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.errors import DebriefError
from pipeline.files import MAX_NOTES_BYTES
from pipeline.notes import company_from_filename, parse_notes, read_notes
from pipeline.text import normalize_ws, sentences


def _error(data: bytes, path: str = "notes.md") -> str:
    with pytest.raises(DebriefError) as info:
        parse_notes(data, path)
    msg = info.value.message
    assert "\n" not in msg and msg.strip() == msg and msg
    assert info.value.exit_code == 2
    return msg


# -- read_notes: the file itself ----------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DebriefError, match="no such file") as info:
        read_notes(tmp_path / "nope.md")
    assert "\n" not in info.value.message


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(DebriefError, match="is a folder") as info:
        read_notes(tmp_path)
    assert "\n" not in info.value.message


def test_read_notes_reads_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "2026-11-20-acme.md"
    path.write_bytes(b"---\nrole: Data Engineer\n---\nThe team seemed sharp and kind.\n")
    notes = read_notes(path)
    assert notes.meta.role == "Data Engineer"
    assert notes.company == "Acme"
    assert notes.body.strip() == "The team seemed sharp and kind."
    assert notes.path == str(path)
    assert len(notes.sha256) == 64


def test_read_notes_rejects_an_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    path.write_bytes(b"x" * (MAX_NOTES_BYTES + 10))
    with pytest.raises(DebriefError, match="200 KB"):
        read_notes(path)


# -- parse_notes: bad content -------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"  \n\t\r\n   \n", "empty", id="whitespace-only"),
        pytest.param(b"company: x\x00\x01\x02 binary", "binary", id="binary-nul"),
        pytest.param(b"caf\xe9 with the team", "UTF-8", id="latin-1"),
        pytest.param(b"a" * (MAX_NOTES_BYTES + 1), "200 KB", id="over-200KB"),
        pytest.param(b"---\ncompany: [unclosed\n---\nbody", "malformed front matter",
                     id="malformed-front-matter"),
        pytest.param(b"---\ncompany: {name: Acme}\n---\nbody text",
                     "front matter 'company' (line 2) should be a single value",
                     id="mapping-where-a-value-belongs"),
        pytest.param(b"---\ncompany: Acme\nrole: Engineer\n---\n", "no text below",
                     id="front-matter-no-body"),
        pytest.param(b"---\ncompany: Acme\n---\n\n   \n\t\n", "no text below",
                     id="front-matter-blank-body"),
    ],
)
def test_bad_notes_are_one_line_errors(data: bytes, needle: str) -> None:
    msg = _error(data, "some/notes.md")
    assert msg.startswith("some/notes.md:"), msg
    assert needle.lower() in msg.lower(), msg


def test_malformed_front_matter_names_the_line() -> None:
    msg = _error(b"---\ncompany: Acme\nrole: [unclosed\n---\nbody")
    assert "line" in msg


def test_non_utf8_names_the_byte_position() -> None:
    assert "position 3" in _error(b"caf\xe9")


def test_exactly_200_kb_is_accepted() -> None:
    notes = parse_notes(b"a" * MAX_NOTES_BYTES, "n.md")
    assert len(notes.body) == MAX_NOTES_BYTES


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"---\n- company: Acme\n- role: Engineer\n---\nbody text here", id="list"),
        pytest.param(b"---\njust a sentence\n---\nbody text here", id="scalar"),
    ],
)
def test_front_matter_that_is_not_a_mapping(data: bytes) -> None:
    assert "key: value" in _error(data)


# -- parse_notes: good content ------------------------------------------------------------
def test_no_front_matter() -> None:
    notes = parse_notes(b"- manager was kind\n- pay is fine\n", "notes/2026-11-20-acme-corp.md")
    assert notes.body == "- manager was kind\n- pay is fine"
    assert notes.meta.company is None
    assert notes.company == "Acme Corp"


def test_crlf_line_endings() -> None:
    data = b"---\r\ncompany: Acme\r\nrole: Data Engineer\r\n---\r\nLine one here.\r\nLine two here.\r\n"
    notes = parse_notes(data, "n.md")
    assert notes.meta.company == "Acme"
    assert notes.meta.role == "Data Engineer"
    assert "\r" not in notes.body
    assert notes.body.splitlines() == ["Line one here.", "Line two here."]


def test_lone_cr_line_endings() -> None:
    notes = parse_notes(b"First line here.\rSecond line here.", "n.md")
    assert notes.body.split("\n") == ["First line here.", "Second line here."]


def test_leading_html_comment_above_front_matter() -> None:
    data = b"<!-- provenance: written by hand -->\n---\ncompany: Acme\nround: 2\n---\nGood talk.\n"
    notes = parse_notes(data, "n.md")
    assert notes.meta.company == "Acme"
    assert notes.meta.round == "2"
    assert notes.body.strip() == "Good talk."
    assert "provenance" not in notes.body


def test_utf8_bom_is_ignored() -> None:
    notes = parse_notes("\ufeff---\ncompany: Café Noir\n---\nbody text".encode(), "n.md")
    assert notes.meta.company == "Café Noir"


def test_front_matter_fields() -> None:
    data = (
        b"---\ncompany: Acme\nrole: Data Engineer\ndate: 2026-11-20\nround: 2\n"
        b"interviewers: [Dana Ruiz, Sam Okafor]\ncurrent_pay: 95k\nteam_size: 12\n---\nbody"
    )
    notes = parse_notes(data, "n.md")
    m = notes.meta
    assert (m.company, m.role, m.date, m.round) == ("Acme", "Data Engineer", "2026-11-20", "2")
    assert m.interviewers == ["Dana Ruiz", "Sam Okafor"]
    assert m.current_pay == "95k"
    assert m.extra == {"team_size": "12"}


def test_sha256_is_of_the_raw_bytes() -> None:
    import hashlib

    data = b"---\ncompany: Acme\n---\r\nbody text\r\n"
    assert parse_notes(data, "n.md").sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("name", "company"),
    [
        ("2026-11-20-acme-corp.md", "Acme Corp"),
        ("2026-11-20_globex.txt", "Globex"),
        ("initech-round-2.md", "Initech Round 2"),
        ("2026-11-20.md", "2026-11-20"),
    ],
)
def test_company_from_filename(name: str, company: str) -> None:
    assert company_from_filename(name) == company


def test_front_matter_company_wins_over_file_name() -> None:
    notes = parse_notes(b"---\ncompany: Acme Corp\n---\nbody", "2026-11-20-other.md")
    assert notes.company == "Acme Corp"


# -- sentences ----------------------------------------------------------------------------
def test_sentences_strip_bullets_and_headings() -> None:
    body = ("# Round 2\n\n- Dana was sharp and kind.\n* They pay well above market.\n"
            "1. Final round next week.\n\n---\n\n| :-: |\n")
    assert sentences(body) == [
        "Round 2",
        "Dana was sharp and kind.",
        "They pay well above market.",
        "Final round next week.",
    ]


def test_sentences_split_a_line_and_keep_fragments_with_a_neighbour() -> None:
    out = sentences("They want a two-week trial project. Unpaid. The team seemed nice though.")
    assert "They want a two-week trial project. Unpaid." in out
    assert "The team seemed nice though." in out


def test_long_lines_are_cut_below_max_len() -> None:
    body = " ".join(["word"] * 400)
    out = sentences(body, max_len=100)
    assert out and all(len(s) <= 100 for s in out)
    assert " ".join(out) == normalize_ws(body)


@settings(max_examples=200)
@given(st.text())
def test_sentences_never_raise_and_return_clean_strings(body: str) -> None:
    out = sentences(body)
    assert isinstance(out, list)
    for s in out:
        assert isinstance(s, str) and len(s) >= 3
        assert s == s.strip() and "\n" not in s


@settings(max_examples=200)
@given(st.text())
@example("Pay 95k (vs 100k now).Not great")
@example("Great team!!Really liked them a lot.")
@example(":.:")
def test_every_sentence_occurs_in_the_normalised_body(body: str) -> None:
    norm = normalize_ws(body)
    for s in sentences(body):
        assert s in norm, (s, body)


_FRAGMENTS = st.sampled_from([
    "The manager was kind.", "Unpaid.", "Pay is $95k, above what I make now.", "Gut: no.",
    "Mr. Smith interviewed me.", "e.g. on-call", "They want an answer by tomorrow!", "Really?",
    "3.5 hours each way.", "team seemed sharp", "Pay: 95k (vs 100k now)", "“we're a family”",
])
_SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\n\n", "\n- ", "\n* ", "\n1. ",
                               "\n# ", "\n---\n"])


@settings(max_examples=200)
@given(st.lists(st.tuples(_FRAGMENTS, _SEPARATORS), max_size=25)
       .map(lambda parts: "".join(f + sep for f, sep in parts)))
def test_sentences_of_note_like_text_occur_in_the_body(body: str) -> None:
    """Notes written the usual way (a space or a line break after each sentence) quote cleanly."""
    norm = normalize_ws(body)
    for s in sentences(body):
        assert s in norm, (s, body)
