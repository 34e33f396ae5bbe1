"""Train the sentence stance and topic model that ships as pipeline/assets/sentence-model.json.

    python eval/train_sentence_model.py            # retrain and write the weights
    python eval/train_sentence_model.py --check    # retrain and compare with the shipped ones
    python eval/train_sentence_model.py --score    # fit on authored, score on dev (for tuning)

Training data: the labelled sentences of the authored cases (a*, b*, c*), of the dev split of
the real-account cases and of the training notes (eval/train/; eval/sentences/, see its
README), and the corpus cue lines for topics only (a cue line's document says what it is about, not which way it pushes). The
held-out split is never read here except by --heldout, which only scores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.corpus import load_corpus  # noqa: E402
from pipeline.index.embedding import get_embedder  # noqa: E402
from pipeline.resources import assets_dir, corpus_dir  # noqa: E402
from pipeline.sentence_model import (  # noqa: E402
    STANCES,
    TOPICS,
    WEIGHTS_FILE,
    SentenceModel,
    fit,
    read,
    save,
    stance_features,
)

L2_STANCE = 0.001  # chosen on dev with --score
L2_TOPIC = 0.001
CUE_TOPICS = {
    "after-a-rough-interview": "performance", "always-go-for-the-offer": "options",
    "commute-and-hours": "flexibility", "company-stability": "security",
    "dont-waste-everyones-time": "interest", "find-clarity-about-what-you-want": "interest",
    "growth-and-learning": "growth", "let-the-employer-impress-you": "process",
    "leverage-from-competing-offers": "options", "listening-to-your-energy": "interest",
    "manager-fit": "manager", "mission-and-values-fit": "mission",
    "negotiating-an-offer": "pay", "pay-below-current-job": "pay",
    "posting-versus-reality": "role", "practice-for-the-interview-that-matters": "options",
    "red-flag-bait-and-switch-role": "role", "red-flag-clawbacks-and-repayment": "security",
    "red-flag-disrespect-in-the-process": "manager", "red-flag-evasive-about-pay": "pay",
    "red-flag-evasive-about-turnover": "team", "red-flag-overwork-culture": "team",
    "red-flag-pressure-and-exploding-offers": "process",
    "red-flag-unpaid-trial-work": "process", "remote-and-flexibility": "flexibility",
    "role-scope-and-level": "role", "signs-of-mutual-interest": "process",
    "team-and-culture-signals": "team", "total-compensation": "pay",
    "weighing-a-backup-option": "options", "when-options-are-scarce": "options",
}


def splits() -> dict[str, str]:
    """case id -> authored | dev | heldout | train, from the labels."""
    out = {}
    for folder in ("cases", "train"):
        for label in sorted((ROOT / "eval" / folder).glob("*.yaml")):
            data = yaml.safe_load(label.read_text(encoding="utf-8")) or {}
            out[label.stem] = data.get("split", "authored")
    return out


def labelled(which: set[str]) -> list[tuple[str, str, str]]:
    """(text, stance, topic) of the labelled sentences of cases in these splits."""
    split = splits()
    rows = []
    for path in sorted((ROOT / "eval" / "sentences").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if split.get(data["case"]) not in which:
            continue
        rows += [(s["text"], s["stance"], s["topic"]) for s in data["sentences"]]
    return rows


def cue_rows() -> list[tuple[str, str]]:
    return [(cue.strip(), CUE_TOPICS[d.id]) for d in load_corpus([corpus_dir()])
            if d.id in CUE_TOPICS for cue in d.cues if isinstance(cue, str) and cue.strip()]


def embed(texts: list[str]) -> np.ndarray:
    return np.asarray(get_embedder().embed(texts), dtype=np.float64)


def train(rows: list[tuple[str, str, str]], cues: list[tuple[str, str]]) -> SentenceModel:
    x = embed([r[0] for r in rows])
    xc = embed([c[0] for c in cues]) if cues else np.zeros((0, x.shape[1]))
    stance_w = fit(stance_features(x, [r[0] for r in rows]),
                   np.array([STANCES.index(r[1]) for r in rows]), len(STANCES), l2=L2_STANCE)
    topic_x = np.vstack([x, xc])
    topic_y = np.array([TOPICS.index(r[2]) for r in rows] + [TOPICS.index(c[1]) for c in cues])
    topic_w = fit(topic_x, topic_y, len(TOPICS), l2=L2_TOPIC)
    digest = hashlib.sha256(json.dumps([rows, cues]).encode()).hexdigest()[:16]
    provenance = {
        "trained_on": "eval/sentences of the authored and dev cases and eval/train; corpus "
                      "cue lines (topics only); never the held-out split",
        "sentences": len(rows), "cue_lines": len(cues), "data_sha256": digest,
        "stances": dict(Counter(r[1] for r in rows)),
        "l2": {"stance": L2_STANCE, "topic": L2_TOPIC},
        "command": "python eval/train_sentence_model.py",
    }
    return SentenceModel(stance_w, topic_w, provenance)


def score(model: SentenceModel, rows: list[tuple[str, str, str]]) -> dict[str, float]:
    x = embed([r[0] for r in rows])
    stance = np.array(STANCES)[model.stance(x, [r[0] for r in rows]).argmax(axis=1)]
    topic = np.array(TOPICS)[model.topic(x).argmax(axis=1)]
    gold_s = np.array([r[1] for r in rows])
    gold_t = np.array([r[2] for r in rows])
    out = {"n": len(rows), "stance_accuracy": round(float((stance == gold_s).mean()), 4),
           "topic_accuracy": round(float((topic == gold_t).mean()), 4)}
    for s in ("keep", "decline"):  # what a reason label needs: when we say keep, is it keep?
        said = stance == s
        out[f"{s}_precision"] = round(float((gold_s[said] == s).mean()), 4) if said.any() else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="retrain and compare, write nothing")
    ap.add_argument("--score", action="store_true",
                    help="fit on authored and train, score on dev")
    ap.add_argument("--heldout", action="store_true", help="score the shipped model on held-out")
    args = ap.parse_args()
    target = assets_dir() / WEIGHTS_FILE
    if args.score:
        model = train(labelled({"authored", "train"}), cue_rows())
        print(json.dumps({"dev": score(model, labelled({"dev"}))}, indent=1))
        return
    if args.heldout:
        print(json.dumps({"heldout": score(read(target), labelled({"heldout"}))}, indent=1))
        return
    model = train(labelled({"authored", "dev", "train"}), cue_rows())
    if args.check:
        shipped = read(target)
        same = (np.array_equal(shipped.stance_w, model.stance_w)
                and np.array_equal(shipped.topic_w, model.topic_w))
        print("reproduces the shipped weights" if same else "DIFFERS from the shipped weights")
        sys.exit(0 if same else 1)
    save(model, target)
    print(f"wrote {target}: {model.provenance['sentences']} sentences, "
          f"{model.provenance['cue_lines']} cue lines")


if __name__ == "__main__":
    main()
