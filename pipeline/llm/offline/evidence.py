"""Each usable note sentence as evidence: which way it leans, and how sure that reading is."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.guard import is_injection
from pipeline.llm.offline.facts import current_pay, pay_against
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.retrieve import Retrieval, SentenceSignal
from pipeline.text import MIN_QUOTE_CHARS, canon

# The call is the sum of the sentences' leans, each weighted by how sure its reading is (0 at
# P = DOUBT, rising to 1 at P = EVIDENCE), a decline lean counting DECLINE_WEIGHT times (a red
# flag outweighs a good sign of the same strength). Chosen on the dev cases, read by a
# sentence model trained without them (as `eval/train_sentence_model.py --score` trains it):
# 0.71 there; a hard cut at 0.45 scored 0.73 but ignored every line read with less certainty.
DOUBT = 0.35
EVIDENCE = 0.5  # from here a sentence counts fully, and is counted for or against in summaries
DECLINE_WEIGHT = 1.2
CURRENCY = ("$", "£", "€")


@dataclass
class Evidence:
    sig: SentenceSignal
    lean: float  # P(keep) - P(decline), or a pay fact's
    fact: str = ""  # "pay below" / "pay above" when a figure decided it

    @property
    def direction(self) -> str:
        return "keep" if self.lean > 0 else "decline"

    @property
    def sure(self) -> float:
        """How sure the reading is of its direction."""
        if self.fact:
            return 1.0
        return self.sig.stance[0] if self.lean > 0 else self.sig.stance[1]


def read_evidence(retrieval: Retrieval, notes: Notes,
                  profile: Profile | None = None) -> list[Evidence]:
    """Every usable note sentence with its lean; pay figures override the model's reading."""
    current = current_pay(notes.meta.current_pay, profile.current.pay if profile else None)
    ignored = {canon(line) for line in retrieval.ignored}
    out = []
    for sig in retrieval.sentences:
        q = canon(sig.text)
        if len(q) < MIN_QUOTE_CHARS or is_injection(q) or any(q in i for i in ignored):
            continue
        about_pay = sig.topic == "pay" or any(c in sig.text for c in CURRENCY)
        pay = pay_against(sig.text, current) if about_pay else None
        if pay is not None and pay != 0:
            out.append(Evidence(sig, pay, "pay above" if pay > 0 else "pay below"))
        else:
            out.append(Evidence(sig, round(sig.lean, 4)))
    return out


def net_lean(evidence: list[Evidence]) -> float:
    return round(sum(e.lean * (DECLINE_WEIGHT if e.lean < 0 else 1.0)
                     * min(1.0, max(0.0, (e.sure - DOUBT) / (EVIDENCE - DOUBT)))
                     for e in evidence), 4)
