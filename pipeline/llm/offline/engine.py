"""The offline engine: a deterministic coach that needs no key and no network.

Each note sentence becomes signed evidence (``evidence.py``); the sum decides; the strongest
evidence becomes the reasons, each quoting its sentence and citing a retrieved passage.
"""

from __future__ import annotations

import math
import re

from pipeline.errors import DebriefError
from pipeline.guard import is_injection
from pipeline.letters import role_at, thank_you, withdrawal
from pipeline.llm.base import Attempt, Message
from pipeline.llm.offline import lexicon as C
from pipeline.llm.offline.evidence import Evidence, current_pay, weigh_sentence
from pipeline.llm.offline.matrix import lean, propose
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.retrieve import Passage, Retrieval
from pipeline.schema import (
    Angle,
    NextStep,
    PracticeItem,
    ProfiledDraft,
    Reason,
    RedFlag,
    ReflectionDraft,
)
from pipeline.text import MIN_QUOTE_CHARS, canon

_QUESTION = re.compile(r"[^.!?\n\"“”]{12,220}\?")


def _questions_from(passage: Passage) -> list[str]:
    out = []
    for q in _QUESTION.findall(passage.text.replace("*", "").replace("_", " ")):
        head, sep, rest = q.rpartition(":")
        if sep and len(head.split()) <= 3:
            q = rest  # "Becomes: How is on-call shared?" -> the question itself
        q = q.strip(" -*>:'\"“”‘’")
        if len(q.split()) >= 4 and not q.lower().startswith(("is it", "is this", "should you")):
            out.append(q[0].upper() + q[1:])
    return out


class OfflineEngine:
    name = "offline"
    model = "debrief-offline-1"

    def complete(self, messages: list[Message], notes: Notes, retrieval: Retrieval,
                 profile: Profile | None = None) -> Attempt:
        draft = self.draft(notes, retrieval, profile)
        return Attempt(draft=draft, raw=draft.model_dump_json())

    def draft(self, notes: Notes, retrieval: Retrieval,
                profile: Profile | None = None) -> ReflectionDraft:
        passages = {p.id: p for p in retrieval.passages}
        titles = {p.doc_id: p.title for p in retrieval.passages}
        pay = current_pay(notes)
        if pay is None and profile is not None and profile.current.pay:
            pay = max(C.amounts(profile.current.pay), default=None)
        ignored = [canon(line) for line in retrieval.ignored]

        def quotable(text: str) -> bool:
            # what validate.problems would refuse as a quote is not evidence: too short
            # ("0 0 0"), or inside an ignored instruction line (a repeated sentence can be)
            q = canon(text).strip("\"' ")
            return (len(q) >= MIN_QUOTE_CHARS and not is_injection(q)
                    and not any(q in line for line in ignored))

        evidence = [weigh_sentence(s, pay, titles) for s in retrieval.sentences
                    if quotable(s.text)]
        for e in evidence:
            # an explicit cue names its advice document: cite that document's best retrieved
            # passage rather than whatever chunk happens to sit closest to the sentence
            for cue in sorted(e.cues, key=lambda c: -c.weight):
                own = next((p for p in retrieval.passages if p.doc_id == cue.doc), None)
                if own is not None:
                    e.sig = e.sig.model_copy(update={"best_passage": own.id})
                    break
        cited = [e for e in evidence if e.sig.best_passage in passages]
        total = sum(e.weight for e in cited)
        matrix = None
        if profile is not None:
            # with a profile, what the person weighs most moves the call (see lean())
            matrix = propose(cited, profile, retrieval, pay)
            total = lean(total, matrix, profile)
        decision = "keep" if total >= 0 else "decline"
        confidence = round(0.5 + 0.45 * math.tanh(abs(total) / 3.0), 2)

        scored = sorted((e for e in cited if abs(e.weight) >= 0.3),
                        key=lambda e: (-abs(e.weight), e.sig.index))
        pro = [e for e in scored if e.direction == decision][:4]
        con = [e for e in scored if e.direction != decision][:2]
        reasons = [self._reason(e) for e in sorted(pro + con, key=lambda e: -abs(e.weight))]
        if not reasons and cited:
            # nothing leans either way: say so, resting on the sentence closest to the advice
            e = max(cited, key=lambda e: (e.sig.passage_sim, -e.sig.index))
            reasons = [Reason(point="The notes say little either way; the call follows the advice "
                              "to see a process through before judging it.",
                              quote=e.sig.text, passage_ids=[e.sig.best_passage], supports=decision)]
        if not reasons:
            raise DebriefError(
                f"{notes.path}: nothing in these notes can serve as evidence (a line needs at "
                "least three words and eight characters, and lines that instruct the tool are "
                "ignored); write down "
                "what happened in the interview."
            )

        flags = sorted((e for e in cited if e.red_flag), key=lambda e: (e.weight, e.sig.index))[:5]
        red_flags = [
            RedFlag(flag=e.label, quote=e.sig.text, passage_ids=[e.sig.best_passage],
                    severity="high" if e.weight <= -2 else "medium" if e.weight <= -1.2 else "low")
            for e in flags
        ]
        n_for = sum(1 for e in cited if e.weight >= 0.3)
        n_against = sum(1 for e in cited if e.weight <= -0.3)
        verdict = "Keep pursuing" if decision == "keep" else "Decline"
        summary = (f"{verdict} {role_at(notes)}. {n_for} line(s) in your notes point toward "
                   f"keeping and {n_against} toward declining")
        summary += f"; the weightiest is “{reasons[0].quote}”." if abs(total) >= 0.3 else \
            ", and neither side clearly outweighs the other."
        if red_flags:
            summary += " Red flags: " + ", ".join(sorted({f.flag.lower() for f in red_flags})) + "."
        if retrieval.ignored:
            summary += f" {len(retrieval.ignored)} line(s) that read as instructions to the tool were ignored."

        all_text = [s.text for s in retrieval.sentences]
        low_interest = any(C.LOW_INTEREST.search(t) for t in all_text)
        practice = self._practice_plan(evidence)
        has_offer = any(c.key == "other-offer" for e in evidence for c in e.cues)
        late_stage = any(c.key == "mutual" for e in evidence for c in e.cues)
        clarity_lines = [t for t in all_text if C.CLARITY.search(t)]

        practice_value = Angle(
            rating="high" if low_interest or len(practice) >= 2 else "medium" if practice else "low",
            note=("You are not sold on this one, so it is a low-stakes rehearsal for the interview "
                  "that matters." if low_interest else
                  f"{len(practice)} moment(s) in the notes are worth rehearsing." if practice else
                  "Nothing in the notes stood out as needing rehearsal."),
        )
        leverage_value = Angle(
            rating="high" if has_offer else "medium" if late_stage and decision == "keep" else "low",
            note=("Another offer is in play: an offer here strengthens your hand with both."
                  if has_offer else
                  "A late-stage process can turn into an offer you can weigh against others."
                  if late_stage and decision == "keep" else
                  "No competing offer is mentioned, so this process gives little leverage yet."),
        )
        clarity_value = Angle(
            rating="high" if clarity_lines else "medium" if n_for and n_against else "low",
            note=(f"You noted: “{clarity_lines[0]}”." if clarity_lines else
                  "The mix of good and bad signs shows what you weigh most." if n_for and n_against
                  else "The notes do not say what this taught you about what you want."),
        )
        questions = self._questions(evidence, passages, retrieval)
        next_step = (NextStep(kind="thank_you", draft=thank_you(notes)) if decision == "keep"
                     else NextStep(kind="withdrawal", draft=withdrawal(notes)))
        fields = dict(
            decision=decision, confidence=confidence, summary=summary, reasons=reasons,
            red_flags=red_flags, practice_value=practice_value, leverage_value=leverage_value,
            clarity_value=clarity_value, practice_plan=practice,
            questions_for_next_round=questions, next_step=next_step,
        )
        if matrix is not None:
            return ProfiledDraft(**fields, matrix=matrix)
        return ReflectionDraft(**fields)

    @staticmethod
    def _reason(e: Evidence) -> Reason:
        lean = "points toward keeping" if e.weight > 0 else "weighs toward declining"
        return Reason(point=f"{e.label}: this {lean}.", quote=e.sig.text,
                      passage_ids=[e.sig.best_passage], supports=e.direction)

    @staticmethod
    def _practice_plan(evidence: list[Evidence]) -> list[PracticeItem]:
        items: list[PracticeItem] = []
        for e in evidence:
            if not e.self_performance:
                continue
            tip = next((t for rx, t in C.REHEARSE if rx.search(e.sig.text)),
                       "Rehearse this part aloud with a friend until it feels routine.")
            items.append(PracticeItem(went_badly=e.sig.text, rehearse=tip))
        return items[:4]

    @staticmethod
    def _questions(evidence: list[Evidence], passages: dict[str, Passage],
                   retrieval: Retrieval) -> list[str]:
        wanted: list[str] = []
        worries = sorted((e for e in evidence if e.weight < 0 or C.UNKNOWN.search(e.sig.text)),
                         key=lambda e: (e.weight, e.sig.index))
        for e in worries:
            p = passages.get(e.sig.best_passage or "")
            for q in _questions_from(p) if p else []:
                if q not in wanted:
                    wanted.append(q)
                    break
            if len(wanted) >= 4:
                break
        if len(wanted) < 2:
            for p in retrieval.passages:
                for q in _questions_from(p):
                    if q not in wanted:
                        wanted.append(q)
                        break
                if len(wanted) >= 3:
                    break
        return wanted[:5]
