"""Each note sentence as signed evidence for keep or decline, and why.

A sentence is read three ways: explicit cues (``lexicon.py``), the advice topic it is
closest to (corpus cue lines, matched by embedding in retrieval), and its sentiment
(VADER). The engine and its matrix both build on this.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache

from pipeline.llm.offline import lexicon as C
from pipeline.notes import Notes
from pipeline.retrieve import Retrieval, SentenceSignal

_BUT = re.compile(r"\b(?:but|though|although|however|yet)\b", re.I)
TOPIC_MIN = 0.5  # cue-line cosine from which a sentence counts as being about that topic
MAX_PER_SENTENCE = 3.5


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@dataclass
class Evidence:
    sig: SentenceSignal
    weight: float
    label: str
    cues: list[C.Cue] = field(default_factory=list)
    red_flag: bool = False
    self_performance: bool = False

    @property
    def direction(self) -> str:
        return "keep" if self.weight > 0 else "decline"


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def current_pay(notes: Notes) -> float | None:
    if not notes.meta.current_pay:
        return None
    found = C.amounts(notes.meta.current_pay)
    return max(found) if found else None


def weigh_sentence(sig: SentenceSignal, current_pay: float | None,
                   titles: dict[str, str]) -> Evidence:
    text = sig.text
    hits = C.match_cues(text)
    sentiment = _vader().polarity_scores(text)["compound"]
    weight = 0.0
    label = ""
    if C.SELF_PERFORMANCE.search(text):
        # how the person did is practice material, not a verdict on the employer
        return Evidence(sig, 0.0, "Your own performance", self_performance=True)
    # "X, but Y": the clause after "but" is what the writer concluded, so a red flag before
    # it that the writer then calls fine is softened, and vice versa
    tail = _BUT.split(text, maxsplit=1)
    tail_tone = _vader().polarity_scores(tail[1])["compound"] if len(tail) == 2 else 0.0
    for cue in hits:
        w = cue.direction * cue.weight
        m = cue.pattern.search(tail[0]) if len(tail) == 2 else None
        if m and abs(tail_tone) >= 0.3 and _sign(tail_tone) != cue.direction:
            w *= 0.3
        weight += w
    if hits:
        label = max(hits, key=lambda c: c.weight).label
    if current_pay and C.PAY_WORDS.search(text):
        # only figures in the same range as a salary; fees, deductions and bonuses are not pay
        offered = [a for a in C.amounts(text) if 0.4 * current_pay <= a <= 3 * current_pay]
        if offered and not any(c.key in ("pay-below", "pay-up") for c in hits):
            if max(offered) < current_pay * 0.97:
                weight -= 2.5
                label = "Pay below the current job"
                hits.append(next(c for c in C.CUES if c.key == "pay-below"))
            elif min(offered) > current_pay * 1.05:
                weight += 2.0
                label = "Pay above the current job"
                hits.append(next(c for c in C.CUES if c.key == "pay-up"))
    if sig.cue_doc and sig.cue_sim >= TOPIC_MIN and sig.cue_stance in ("keep", "decline"):
        topic = (1 if sig.cue_stance == "keep" else -1) * min((sig.cue_sim - 0.45) * 6, 1.5)
        if abs(sentiment) >= 0.5 and _sign(sentiment) != _sign(topic):
            topic *= 0.25  # the sentence's tone contradicts the topic: likely a negation
        if not hits or _sign(topic) != _sign(weight):
            weight += topic
        label = label or titles.get(sig.cue_doc, sig.cue_doc)
    if abs(sentiment) >= 0.3:
        # tone counts fully on its own, and little where an explicit cue already spoke
        weight += (0.25 if hits else 0.7) * sentiment
        label = label or ("A good sign in the notes" if sentiment > 0 else "A worry in the notes")
    weight = max(-MAX_PER_SENTENCE, min(MAX_PER_SENTENCE, weight))
    red = weight <= -1.0 and (any(c.red_flag for c in hits if c.direction < 0) or (
        sig.cue_stance == "decline" and sig.cue_sim >= 0.55))
    return Evidence(sig, round(weight, 4), label, hits, red)


def explain(notes: Notes, retrieval: Retrieval) -> str:
    """Per-sentence weights as JSON lines, for `--debug` and for tuning the engine honestly."""
    titles = {p.doc_id: p.title for p in retrieval.passages}
    pay = current_pay(notes)
    rows = []
    for s in retrieval.sentences:
        e = weigh_sentence(s, pay, titles)
        rows.append(json.dumps({"w": e.weight, "cues": [c.key for c in e.cues], "topic": s.cue_doc,
                                "sim": s.cue_sim, "text": s.text[:80]}))
    return "\n".join(rows)
