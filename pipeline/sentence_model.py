"""The stance and topic of a note sentence, read from its MiniLM vector.

Two small linear models (multinomial logistic regression) trained on note sentences labelled
by people: the authored eval cases, the dev split of the real-account cases and the training
notes (``eval/sentences``), plus the corpus cue lines for topics. The topic reads the
384-dimensional MiniLM vector the retrieval already computes; the stance reads that vector
and VADER's four sentiment scores, which carry polarity the vector mostly lacks (+4 points of
dev accuracy). Held-out cases are never trained on. ``eval/train_sentence_model.py`` retrains the
shipped weights and a test checks that it reproduces them.

Why this and not a longer list of phrasings: a phrasing list only knows the sentences it was
grown on, while a sentence's meaning ("the pay range they gave is fair for our field")
lies in its vector, whatever the words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from pipeline.resources import assets_dir

STANCES = ("keep", "decline", "neutral")
TOPICS = ("pay", "role", "manager", "team", "process", "growth", "flexibility", "security",
          "mission", "interest", "options", "performance", "logistics")
WEIGHTS_FILE = "sentence-model.json"
DECIMALS = 5  # weights are stored rounded, so a retrain on another BLAS still reproduces them


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _with_bias(x: np.ndarray) -> np.ndarray:
    return np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(x), 1))])


@dataclass(frozen=True)
class SentenceModel:
    stance_w: np.ndarray  # (len(STANCES), dim + 1), the last column the bias
    topic_w: np.ndarray  # (len(TOPICS), dim + 1)
    provenance: dict

    def stance(self, vectors: np.ndarray, texts: list[str]) -> np.ndarray:
        """P(keep), P(decline), P(neutral) per sentence (its vector and its text)."""
        if len(vectors) == 0:
            return np.zeros((0, len(STANCES)))
        return softmax(_with_bias(stance_features(vectors, texts)) @ self.stance_w.T)

    def topic(self, vectors: np.ndarray) -> np.ndarray:
        if len(vectors) == 0:
            return np.zeros((0, len(TOPICS)))
        return softmax(_with_bias(vectors) @ self.topic_w.T)


@cache
def _vader():  # noqa: ANN202 - vaderSentiment is untyped
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def stance_features(vectors: np.ndarray, texts: list[str]) -> np.ndarray:
    """The MiniLM vector and VADER's compound, positive, negative and neutral scores."""
    scores = [_vader().polarity_scores(t) for t in texts]
    sentiment = np.array([[s["compound"], s["pos"], s["neg"], s["neu"]] for s in scores])
    return np.hstack([np.asarray(vectors, dtype=np.float64), sentiment])


def fit(x: np.ndarray, y: np.ndarray, classes: int, *, l2: float, iterations: int = 600,
        step: float = 2.0) -> np.ndarray:
    """Multinomial logistic regression by full-batch gradient descent, classes weighted to
    balance, from zeros: deterministic, and small enough (a few thousand rows) for numpy."""
    xb = _with_bias(x)
    onehot = np.eye(classes)[y]
    counts = onehot.sum(axis=0)
    weight = (len(y) / (classes * np.maximum(counts, 1)))[y][:, None]
    w = np.zeros((classes, xb.shape[1]))
    for _ in range(iterations):
        p = softmax(xb @ w.T)
        grad = ((p - onehot) * weight).T @ xb / len(y)
        grad[:, :-1] += l2 * w[:, :-1]
        w -= step * grad
    return np.round(w, DECIMALS)


def save(model: SentenceModel, path: Path) -> None:
    data = {"provenance": model.provenance, "stances": list(STANCES), "topics": list(TOPICS),
            "stance_w": model.stance_w.tolist(), "topic_w": model.topic_w.tolist()}
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")


def read(path: Path) -> SentenceModel:
    data = json.loads(path.read_text(encoding="utf-8"))
    if tuple(data["stances"]) != STANCES or tuple(data["topics"]) != TOPICS:
        raise ValueError(f"{path} was trained for other labels")
    return SentenceModel(np.asarray(data["stance_w"]), np.asarray(data["topic_w"]),
                         data.get("provenance", {}))


@cache
def sentence_model() -> SentenceModel:
    return read(assets_dir() / WEIGHTS_FILE)
