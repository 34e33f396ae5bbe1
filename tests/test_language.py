"""Notes not in English are reflected on, and the reflection says what that costs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, describe, run_cli
from hypothesis import given
from hypothesis import strategies as st

from pipeline.language import detect_language
from pipeline.notes import read_notes

OTHER = {
    "es": "Entrevista con Acme. El sueldo es bajo y me pidieron trabajar gratis una semana. "
          "El equipo parecía amable y la oficina está cerca de casa.",
    "fr": "Entretien avec Acme. Le salaire est bas et ils m'ont demandé de travailler "
          "gratuitement pendant une semaine. L'équipe semblait sympathique.",
    "de": "Vorstellungsgespräch bei Acme. Das Gehalt ist niedrig und sie wollten eine "
          "unbezahlte Probewoche. Das Team wirkte nett.",
    "ru": "Собеседование в Acme. Зарплата низкая, и они попросили неделю бесплатной работы. "
          "Команда показалась дружелюбной.",
    "zh-cn": "今天和Acme面试。工资很低，他们要求我免费试工一周。团队看起来很友好。",
}
TERSE_ENGLISH = [
    "- Pay $63/hr\n- 8s schedule, every third weekend\n- 20 min commute\n- Farah: written "
    "orientation plan\n- 401k match 4%",
    "Recruiter call. Salary band 120-140k. Remote first. Two rounds left. Panel next Tuesday. "
    "Manager seemed sharp.",
    "Met Jürgen Müller, CTO. Talked Kubernetes, Terraform, Go. Offer likely. Bonus 10%.",
]


@pytest.mark.parametrize(("lang", "text"), OTHER.items())
def test_other_languages_are_named(lang: str, text: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", TERSE_ENGLISH)
def test_terse_english_is_english(text: str) -> None:
    assert detect_language(text) is None


def test_no_english_note_in_the_repository_is_flagged() -> None:
    paths = [*ROOT.glob("eval/**/*.md"), *ROOT.glob("tests/fixtures/**/*.md"),
             *ROOT.glob("examples/*.md")]
    checked = 0
    for p in paths:
        if p.name == "README.md":
            continue
        try:
            notes = read_notes(p)
        except Exception:  # the deliberately broken fixtures
            continue
        checked += 1
        assert detect_language(notes.body) is None, p
    assert checked >= 100


def test_reflect_says_so_in_markdown_and_json(indexed_home: Path, tmp_path: Path) -> None:
    note = tmp_path / "acme-es.md"
    note.write_text(OTHER["es"] + "\n", encoding="utf-8")
    md = run_cli("reflect", note)
    assert md.exit_code == 0, describe(md)
    assert "not in English (detected: es)" in md.stdout
    data = json.loads(run_cli("reflect", note, "--json").stdout)
    assert len(data["notices"]) == 1 and "offline engine reads English only" in data["notices"][0]
    english = json.loads(run_cli("reflect", ROOT / "examples" / "2026-11-20-acme.md",
                                 "--json").stdout)
    assert english["notices"] == []


@given(st.text(max_size=400))
def test_any_text_gets_an_answer_not_an_exception(text: str) -> None:
    lang = detect_language(text)
    assert lang is None or (isinstance(lang, str) and lang != "en")
