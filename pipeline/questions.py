"""Questions for the next round: what the notes leave open or worrying, asked of the employer.

A decision about a job needs a few things known (pay, what the role is, who the manager is,
the hours and place, what happens next). Each becomes a question when no sentence of the
notes is about it, and a sharper one when the notes worry about it. Never a question the
notes already answer, never one to the person themselves, never text lifted from the advice.
"""

from __future__ import annotations

from pipeline.retrieve import Retrieval, SentenceSignal

MAX_QUESTIONS = 4
ABOUT = 0.3  # P(topic) from which a sentence counts as being about it (the notes answer it)
WORRY = 0.5  # P(decline) from which a sentence about a topic makes it a worry
# (topic, asked when the notes say nothing about it, asked when they worry about it)
CHECKLIST: list[tuple[str, str | None, str]] = [
    ("pay", "What is the pay range for this role, and what comes with it beyond base pay?",
     "Can you put the pay and its terms in writing, and how is pay reviewed after the first "
     "year?"),
    ("role", "What would I own in the first six months, and how would you judge that it went "
             "well?",
     "How does the role as you describe it differ from the posting, and will the title and "
     "scope be in the offer?"),
    ("manager", "Who would I report to, and could I talk with them before an offer?",
     "How does the manager run the team day to day: one-to-ones, feedback, decisions?"),
    ("flexibility", "What are the usual hours and office days, and are they in the contract?",
     "Could the hours, on-call and office days we discussed be written into the offer?"),
    ("team", None,
     "How long have people on the team stayed, and why did the last person in this role "
     "leave?"),
    ("security", None,
     "How is the company funded, and how has headcount changed over the past year?"),
    ("process", "What are the next steps, and when will I hear from you?",
     "What is the timeline for a decision, and can I have a few days to consider an offer?"),
    ("growth", None,
     "How do people here learn and move up; could you give an example from the team?"),
]


def _about(sentences: list[SentenceSignal], topic: str) -> list[SentenceSignal]:
    return [s for s in sentences if s.about(topic) >= ABOUT]


def open_questions(retrieval: Retrieval, cited: list[str] | None = None,
                   limit: int = MAX_QUESTIONS) -> list[str]:
    """Worries first (the sentences the call rests on before the others), then the
    unknowns, in the checklist's order."""
    cited = cited or []
    worries: list[tuple[int, int, str]] = []
    unknown: list[str] = []
    for rank, (topic, if_unknown, if_worried) in enumerate(CHECKLIST):
        about = _about(retrieval.sentences, topic)
        if not about:
            if if_unknown:
                unknown.append(if_unknown)
            continue
        worried = [s for s in about if s.stance[1] >= WORRY]
        if worried:
            first_cited = min((0 if s.text in cited else 1) for s in worried)
            worries.append((first_cited, rank, if_worried))
    asked = [q for _, _, q in sorted(worries)] + unknown
    return asked[:limit]
