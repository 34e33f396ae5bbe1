"""The offline engine: a deterministic reader of notes that needs no key, no network, no model
server.

Each note sentence carries what the sentence model reads in it (P(keep), P(decline),
P(neutral), its topic; see ``pipeline/sentence_model.py``), plus the one kind of fact read
without the model: pay figures against the person's current pay. A sentence the model is
sure enough about (``EVIDENCE``) counts with its lean, P(keep) - P(decline); the sum decides,
a tie keeps the process open; the confidence comes from the size of the sum, calibrated on
the training notes. The reasons are the sentences that weigh most, each labelled only with
the way it pushes, so a label cannot say more than the model read.
"""

from __future__ import annotations

import math

from pipeline.errors import DebriefError
from pipeline.letters import ANGLE_NOTES, role_at, thank_you, withdrawal
from pipeline.llm.base import Attempt, Request
from pipeline.llm.offline.evidence import EVIDENCE, Evidence, net_lean, read_evidence
from pipeline.llm.offline.matrix import combined, propose
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.questions import open_questions
from pipeline.retrieve import Retrieval
from pipeline.schema import (
    Angle,
    NextStep,
    PracticeItem,
    ProfiledDraft,
    Reason,
    RedFlag,
    ReflectionDraft,
)

REASON = 0.6  # and from which it is shown as a reason (precision over recall)
RED_FLAG = 0.65  # P(decline) from which a decline reason is also a red flag
CLOSE_CALL = 0.5  # a net lean under this is a close call
CONFIDENCE_SCALE = 2.0  # dev Brier 0.221 at 2.0 (0.229 at 0.5 or 6); always 0.5 scores 0.25
RED_FLAG_TOPICS = {"pay", "process", "manager", "team", "security", "role"}
REHEARSE = ("Write a better answer in two or three sentences, then say it aloud until it "
            "comes easily before the next round.")
TOPIC_WORDS = {"pay": "pay", "role": "the role", "manager": "the manager", "team": "the team",
               "process": "the hiring process", "growth": "growth", "flexibility":
               "hours and place", "security": "job security", "mission": "the work itself"}


def confidence(net: float) -> float:
    """0.5 at a tie, up to 0.95; CONFIDENCE_SCALE minimises the Brier score on dev."""
    return round(0.5 + 0.45 * math.tanh(abs(net) / CONFIDENCE_SCALE), 2)


def _point(e: Evidence) -> str:
    way = "keeping" if e.lean > 0 else "declining"
    if e.fact == "pay below":
        return "The pay stated is below your current pay: this weighs toward declining."
    if e.fact == "pay above":
        return "The pay stated is above your current pay: this weighs toward keeping."
    strength = "strongly " if e.sure >= 0.75 else ""
    about = TOPIC_WORDS.get(e.sig.topic) if e.sig.topic_p >= 0.6 else None
    return f"This {strength}weighs toward {way}" + (f" (about {about})." if about else ".")


class OfflineEngine:
    name = "offline"
    model = "debrief-offline-2"

    def close(self) -> None:
        """Nothing to release."""

    def complete(self, request: Request) -> Attempt:
        draft = self.draft(request.notes, request.retrieval, request.profile)
        return Attempt(draft=draft, raw=draft.model_dump_json())

    def draft(self, notes: Notes, retrieval: Retrieval,
              profile: Profile | None = None) -> ReflectionDraft:
        evidence = [e for e in read_evidence(retrieval, notes, profile)
                    if e.sig.best_passage]
        if not evidence:
            raise DebriefError(
                f"{notes.path}: nothing in these notes can serve as evidence (a line needs at "
                "least three words and eight characters, and lines that instruct the tool are "
                "ignored); write down what happened in the interview.")
        net = net_lean(evidence)
        matrix = propose(evidence, profile, retrieval) if profile is not None else None
        call_score = combined(net, matrix, profile) if matrix is not None else net
        decision = "keep" if call_score >= 0 else "decline"
        # a profile moves confidence only by moving the call
        conf = confidence(net if (call_score >= 0) == (net >= 0) else call_score)

        shown = sorted((e for e in evidence if e.sure >= REASON),
                       key=lambda e: (-abs(e.lean), e.sig.index))
        pro = [e for e in shown if e.direction == decision][:4]
        con = [e for e in shown if e.direction != decision][:2]
        reasons = [Reason(point=_point(e), quote=e.sig.text,
                          passage_ids=[e.sig.best_passage or ""], supports=e.direction)
                   for e in sorted(pro + con, key=lambda e: -abs(e.lean))]
        close = abs(net) < CLOSE_CALL or not pro
        if not pro:
            # nothing sure points the way of the call: show the line that tips it, as such
            tip = max((e for e in evidence if e.direction == decision),
                      key=lambda e: (abs(e.lean), -e.sig.index), default=None)
            if tip is not None:
                reasons.insert(0, Reason(
                    point=f"This tips the call toward {'keeping' if tip.lean > 0 else 'declining'}"
                          ", though not strongly.", quote=tip.sig.text,
                    passage_ids=[tip.sig.best_passage or ""], supports=tip.direction))
        if not reasons:
            e = max(evidence, key=lambda e: (e.sig.passage_sim, -e.sig.index))
            reasons = [Reason(point="The notes say little either way; nothing here clearly "
                                    "pushes the call.", quote=e.sig.text,
                              passage_ids=[e.sig.best_passage or ""], supports=decision)]
        flags = [RedFlag(flag=f"A worry about {TOPIC_WORDS.get(e.sig.topic, 'the job')}",
                         quote=e.sig.text, passage_ids=[e.sig.best_passage or ""],
                         severity="high" if e.sure >= 0.8 else "medium")
                 for e in shown if e.direction == "decline" and e.sure >= RED_FLAG
                 and (e.fact or e.sig.topic in RED_FLAG_TOPICS)][:5]
        questions = open_questions(retrieval, [r.quote for r in reasons])
        practice = [PracticeItem(went_badly=e.sig.text, rehearse=REHEARSE)
                    for e in evidence if e.sig.topic == "performance" and e.sig.topic_p >= 0.5
                    and e.lean < 0][:4]
        fields = dict(
            decision=decision, confidence=conf,
            summary=_summary(notes, decision, net, evidence, reasons, close, questions),
            reasons=reasons, red_flags=flags,
            practice_value=_angle("practice", "high" if len(practice) >= 2 else
                                  "medium" if practice else "low"),
            leverage_value=_angle("leverage", _about(evidence, "options", "keep")),
            clarity_value=_angle("clarity", _about(evidence, "interest", None)),
            practice_plan=practice, questions_for_next_round=questions,
            next_step=_next_step(notes, decision, evidence),
        )
        if matrix is not None:
            return ProfiledDraft(**fields, matrix=matrix)
        return ReflectionDraft(**fields)


def _about(evidence: list[Evidence], topic: str, direction: str | None) -> str:
    hits = [e for e in evidence if e.sig.topic == topic and e.sig.topic_p >= 0.5
            and (direction is None or e.direction == direction) and e.sure >= EVIDENCE]
    return "high" if len(hits) >= 2 else "medium" if hits else "low"


def _angle(kind: str, rating: str) -> Angle:
    return Angle(rating=rating, note=ANGLE_NOTES[kind][rating])


def _next_step(notes: Notes, decision: str, evidence: list[Evidence]) -> NextStep:
    if decision == "decline":
        return NextStep(kind="withdrawal", draft=withdrawal(notes))
    good = [e for e in evidence if e.direction == "keep" and e.sure >= REASON]
    best = max(good, key=lambda e: e.lean, default=None)
    cold = any(e.sig.topic == "interest" and e.direction == "decline" and e.sure >= REASON
               for e in evidence)
    return NextStep(kind="thank_you", draft=thank_you(
        notes, topic=best.sig.topic if best and best.sig.topic_p >= 0.5 else None,
        keen=not cold))


def _summary(notes: Notes, decision: str, net: float, evidence: list[Evidence],
             reasons: list[Reason], close: bool, questions: list[str]) -> str:
    verdict = "Keep pursuing" if decision == "keep" else "Decline"
    n_for = sum(1 for e in evidence if e.sure >= EVIDENCE and e.lean > 0)
    n_against = sum(1 for e in evidence if e.sure >= EVIDENCE and e.lean < 0)
    out = (f"{verdict} {role_at(notes)}. {n_for} line(s) in your notes point toward keeping "
           f"and {n_against} toward declining")
    if close:
        settle = " ".join(questions[:2])
        out += (", and neither side clearly outweighs the other: a close call."
                + (f" What would settle it: {settle}" if settle else ""))
    else:
        out += f"; the weightiest is “{reasons[0].quote}”."
    return out
