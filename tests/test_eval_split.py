"""The dev / held-out split of the real-account cases follows the rule in eval/README.md,
and the sentence model that ships is the one its training script makes from dev data."""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

EVAL = ROOT / "eval"


def rule(source: str) -> str:
    """The rule as eval/README.md writes it."""
    return "heldout" if int(hashlib.sha256(source.encode("utf-8")).hexdigest(), 16) % 10 < 4 \
        else "dev"


def real_labels() -> list[Path]:
    return [*sorted((EVAL / "cases").glob("r*.yaml")),
            *sorted((EVAL / "profile-cases").glob("q*.yaml")),
            *sorted((EVAL / "compare").glob("real-*/gold.yaml"))]


def test_the_rule_is_the_one_eval_readme_writes() -> None:
    readme = (EVAL / "README.md").read_text(encoding="utf-8")
    assert ('split = "heldout" if int(sha256(source.encode("utf-8")).hexdigest(), 16) % 10 < 4 '
            'else "dev"') in readme


@pytest.mark.parametrize("label", real_labels(), ids=lambda p: str(p.relative_to(EVAL)))
def test_every_real_account_case_is_in_the_split_the_rule_gives(label: Path) -> None:
    data = yaml.safe_load(label.read_text(encoding="utf-8"))
    assert data["source"].startswith(("https://", "http://")), "a real-account case names its page"
    assert data["split"] == rule(data["source"])
    assert f"split:{data['split']}" in data["tags"]


def test_both_splits_hold_enough_cases() -> None:
    splits = [yaml.safe_load(p.read_text(encoding="utf-8"))["split"]
              for p in sorted((EVAL / "cases").glob("r*.yaml"))]
    assert len(splits) >= 80
    assert splits.count("heldout") >= 0.3 * len(splits)
    assert splits.count("dev") >= 0.3 * len(splits)


def test_no_held_out_sentence_trains_the_sentence_model() -> None:
    spec = importlib.util.spec_from_file_location("train_sentence_model",
                                                  EVAL / "train_sentence_model.py")
    assert spec and spec.loader
    train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train)
    by_split: dict[str, set[str]] = {"heldout": set(), "other": set()}
    for path in (EVAL / "sentences").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        key = "heldout" if train.splits().get(data["case"]) == "heldout" else "other"
        by_split[key] |= {s["text"] for s in data["sentences"]}
    only_heldout = by_split["heldout"] - by_split["other"]
    assert len(only_heldout) > 300
    trained_on = {text for text, _, _ in train.labelled({"authored", "dev", "train"})}
    assert trained_on and not trained_on & only_heldout


@pytest.mark.slow
def test_retraining_reproduces_the_shipped_sentence_model() -> None:
    proc = subprocess.run([sys.executable, str(EVAL / "train_sentence_model.py"), "--check"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduces the shipped weights" in proc.stdout
