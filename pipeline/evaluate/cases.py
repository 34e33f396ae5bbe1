"""Labelled cases: notes with the call a careful coach would make, profile cases, compare sets."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from pipeline.errors import DebriefError


class EvalCase(BaseModel):
    id: str
    path: str
    expected: str = Field(pattern="^(keep|decline|either)$")
    gold: list[str]
    tags: list[str] = Field(default_factory=list)
    # profile cases only (eval/profile-cases): the profile's file stem and the matrix labels
    profile: str | None = None
    gold_scores: dict[str, int | None] = Field(default_factory=dict)
    gold_deal_breakers: list[str] = Field(default_factory=list)
    split: str = Field(default="authored", pattern="^(authored|dev|heldout)$")
    # the labelled stance of note sentences (eval/sentences/<id>.yaml), for reason precision
    stances: dict[str, str] = Field(default_factory=dict)


SPLITS = ("heldout", "dev", "authored")  # the order reports show them in


def sentence_labels(folder: Path, case_id: str) -> dict[str, str]:
    """text -> stance of a case's labelled sentences, or {} when it has none."""
    path = folder / f"{case_id}.yaml"
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {s["text"]: s["stance"] for s in data.get("sentences", [])}


def load_cases(folder: Path, splits: set[str] | None = None) -> list[EvalCase]:
    """The labelled cases in ``folder`` (only those of ``splits`` when given), with the
    sentence labels found in ``sentences/`` beside it."""

    if not folder.is_dir():
        raise DebriefError(f"no eval cases folder at {folder}; run from a checkout or pass --cases.")
    cases = []
    for md in sorted(p for p in folder.glob("*.md") if p.name != "README.md"):
        label = md.with_suffix(".yaml")
        if not label.is_file():
            raise DebriefError(f"eval case {md.name} has no label file {label.name}.")
        data = yaml.safe_load(label.read_text(encoding="utf-8")) or {}
        try:
            cases.append(EvalCase(id=md.stem, path=str(md), expected=data.get("expected"),
                                  gold=data.get("gold") or [], tags=data.get("tags") or [],
                                  profile=data.get("profile"),
                                  gold_scores=data.get("gold_scores") or {},
                                  gold_deal_breakers=data.get("gold_deal_breakers") or [],
                                  split=data.get("split") or "authored",
                                  stances=sentence_labels(folder.parent / "sentences",
                                                          md.stem)))
        except Exception as exc:
            raise DebriefError(f"eval label {label}: {exc}") from None
    if splits is not None:
        return [c for c in cases if c.split in splits]
    if not cases:
        raise DebriefError(f"no eval cases (*.md with a .yaml label) in {folder}.")
    return cases


def cases_digest(cases: list[EvalCase]) -> str:
    h = hashlib.sha256()
    for c in cases:
        h.update(Path(c.path).read_bytes())
        h.update(Path(c.path).with_suffix(".yaml").read_bytes())
    return h.hexdigest()[:16]


def load_compare_sets(folder: Path, splits: set[str] | None = None
                      ) -> list[tuple[str, Path, dict[str, Any]]]:
    sets = []
    for gold in sorted(folder.glob("*/gold.yaml")):
        data = yaml.safe_load(gold.read_text(encoding="utf-8")) or {}
        if not data.get("profile") or not data.get("ranking"):
            raise DebriefError(f"compare set {gold} needs 'profile' and 'ranking'.")
        data.setdefault("split", "authored")
        if splits is None or data["split"] in splits:
            sets.append((gold.parent.name, gold.parent, data))
    return sets
