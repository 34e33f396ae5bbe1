"""The contract: what a reflection is. The model fills ``ReflectionDraft``; the pipeline adds
provenance to make a ``Reflection``. Bump SCHEMA_VERSION on any breaking change."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

Decision = Literal["keep", "decline"]
Rating = Literal["none", "low", "medium", "high"]


class Reason(BaseModel):
    point: str = Field(description="The reason, in one sentence.")
    quote: str = Field(description="Exact words copied from the notes that this reason rests on.")
    passage_ids: list[str] = Field(
        description="Ids of the advice passages (e.g. 'growth-and-learning#1') this draws on."
    )
    supports: Decision = Field(description="Which call this reason supports.")


class RedFlag(BaseModel):
    flag: str = Field(description="What is worrying, in a few words.")
    quote: str = Field(description="Exact words copied from the notes.")
    passage_ids: list[str] = Field(description="Ids of the advice passages it draws on.")
    severity: Literal["low", "medium", "high"]


class Angle(BaseModel):
    rating: Rating
    note: str = Field(description="One or two sentences on why.")


class PracticeItem(BaseModel):
    went_badly: str = Field(description="What did not go well, from the notes.")
    rehearse: str = Field(description="What to rehearse before the next interview.")


class NextStep(BaseModel):
    kind: Literal["thank_you", "withdrawal"] = Field(
        description="'thank_you' when the decision is keep, 'withdrawal' when it is decline."
    )
    draft: str = Field(description="A short note the person can send, under 150 words.")


class ReflectionDraft(BaseModel):
    """What a model (or the offline engine) must produce."""

    decision: Decision = Field(description="'keep' to keep pursuing, 'decline' to withdraw.")
    confidence: float = Field(ge=0.0, le=1.0)
    summary: str = Field(description="Two or three sentences.")
    reasons: list[Reason] = Field(min_length=1, max_length=8)
    red_flags: list[RedFlag] = Field(default_factory=list, max_length=8)
    practice_value: Angle = Field(description="What this process is worth as interview practice.")
    leverage_value: Angle = Field(description="What it is worth as leverage with other employers.")
    clarity_value: Angle = Field(description="What it taught about what the person wants.")
    practice_plan: list[PracticeItem] = Field(default_factory=list, max_length=6)
    questions_for_next_round: list[str] = Field(default_factory=list, max_length=8)
    next_step: NextStep


class Source(BaseModel):
    id: str
    doc_id: str
    title: str
    heading: str
    stance: str
    source: str
    score: float
    text: str


class NotesInfo(BaseModel):
    path: str
    company: str
    role: str | None = None
    date: str | None = None
    round: str | None = None
    sha256: str


class Reflection(ReflectionDraft):
    """A validated reflection with where it came from. JSON output is this model."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["1"] = SCHEMA_VERSION
    engine: str = Field(description="'offline' or 'openai'.")
    model: str | None = None
    prompt_version: str
    index_fingerprint: str = ""
    attempts: int = 1
    notes: NotesInfo
    sources: list[Source]
    ignored_lines: list[str] = Field(
        default_factory=list, description="Lines in the notes treated as injection attempts."
    )
    notices: list[str] = Field(
        default_factory=list,
        description="What limits this reflection, e.g. notes not in English.")
    matrix: DecisionMatrix | None = Field(
        default=None, description="The weighted criteria, when a priorities profile is set.")


# -- the decision matrix (only with a priorities profile; see pipeline/profile.py) -----------
class CriterionScore(BaseModel):
    criterion: str = Field(description="A criterion name from the profile, e.g. 'pay'.")
    score: int | None = Field(
        ge=-2, le=2,
        description="-2 much worse than the current situation .. +2 much better; null when "
                    "the notes say nothing about this criterion.")
    quote: str | None = Field(
        default=None, description="Exact words from the notes the score rests on; null if unknown.")
    passage_ids: list[str] = Field(
        default_factory=list, description="Ids of the advice passages the score draws on.")


class DealBreakerHit(BaseModel):
    deal_breaker: str = Field(description="A deal-breaker copied exactly from the profile.")
    quote: str = Field(description="Exact words from the notes that show it.")
    passage_ids: list[str] = Field(default_factory=list)
    resolved: bool = Field(default=False, description="True only if the notes show it was resolved.")
    resolution_quote: str | None = Field(
        default=None, description="Exact words from the notes showing the resolution.")


class MustHaveCheck(BaseModel):
    must_have: str = Field(description="A must-have copied exactly from the profile.")
    status: Literal["met", "unmet", "unknown"]
    quote: str | None = Field(default=None, description="Exact words from the notes; null if unknown.")


class MatrixDraft(BaseModel):
    """What a model (or the offline engine) proposes; the totals are computed in code."""

    criteria: list[CriterionScore] = Field(default_factory=list, max_length=20)
    deal_breakers: list[DealBreakerHit] = Field(default_factory=list, max_length=12)
    must_haves: list[MustHaveCheck] = Field(default_factory=list, max_length=12)


class ProfiledDraft(ReflectionDraft):
    """The draft asked for when the person has a priorities profile."""

    matrix: MatrixDraft


class MatrixRow(BaseModel):
    criterion: str
    label: str
    weight: int
    score: int | None
    weighted: int | None
    quote: str | None = None
    passage_ids: list[str] = Field(default_factory=list)


class DecisionMatrix(BaseModel):
    rows: list[MatrixRow]
    total: int = Field(description="Sum of weight x score over the known criteria.")
    max_total: int = Field(description="2 x the sum of all weights: the best possible total.")
    normalized: float = Field(description="total / max_total, from -1 to 1; ranks processes.")
    unknown: list[str] = Field(description="Criteria the notes say nothing about, by weight.")
    deal_breakers: list[DealBreakerHit] = Field(default_factory=list)
    must_haves: list[MustHaveCheck] = Field(default_factory=list)
    forced_decline: str | None = Field(
        default=None, description="Why the profile forced 'decline', when it did.")
    profile_fingerprint: str


Reflection.model_rebuild()


# -- what a language model answers (prompt reflect-v2) ---------------------------------------
# The model quotes a note sentence and cites advice by passage id (an enum a grammar
# enforces); the quote is aligned to the exact words of the notes it came from
# (pipeline.text.align_quote), so what the user sees is verbatim. It weighs each point, and
# the call is derived from those weights in code (pipeline/assemble.py). Field order is the
# order a grammar-constrained model writes them: the quote first, then what it means, so the
# reason describes the sentence it rests on. (An enum of the notes' sentences would make
# quotes verbatim by grammar, but it slowed generation several times on llama.cpp.)
class ModelPoint(BaseModel):
    quote: str = Field(description="One note sentence, copied exactly.")
    stance: Decision = Field(description="keep: a reason to go on; decline: to withdraw.")
    weight: int = Field(ge=1, le=3, description="1 minor, 2 important, 3 decisive.")
    why: str = Field(description="One short sentence in your own words.")
    passage: str = Field(description="Id of the advice passage it relates to.")


class ModelCriterion(BaseModel):
    criterion: str
    score: int | None = Field(default=None, ge=-2, le=2)
    quote: str | None = None


class ModelDealBreaker(BaseModel):
    deal_breaker: int = Field(description="Number of the profile's deal-breaker (D<n>).")
    quote: str
    resolved_by: str | None = None


class ModelMustHave(BaseModel):
    must_have: int = Field(description="Number of the profile's must-have (M<n>).")
    status: Literal["met", "unmet", "unknown"]
    quote: str | None = None


class ModelAnswer(BaseModel):
    points: list[ModelPoint] = Field(min_length=1, max_length=8)
    practice: Rating
    leverage: Rating
    clarity: Rating
    criteria: list[ModelCriterion] = Field(default_factory=list, max_length=20)
    deal_breakers: list[ModelDealBreaker] = Field(default_factory=list, max_length=12)
    must_haves: list[ModelMustHave] = Field(default_factory=list, max_length=12)


RATINGS = ["none", "low", "medium", "high"]


def answer_schema(sentences: int, passage_ids: list[str], criteria: list[str] | None = None,
                  deal_breakers: int = 0, must_haves: int = 0) -> dict:
    """The JSON schema of one ``ModelAnswer``, with every id a model may use listed as an
    enum so that a grammar-constrained server cannot produce another. ``criteria`` is None
    without a priorities profile; deal-breakers and must-haves are cited by number, since the
    person's own wording could break a grammar. No length limits on strings: they slow
    grammar sampling a lot."""
    quote = {"type": "string"}
    maybe_quote = {"anyOf": [quote, {"type": "null"}]}
    point = {"type": "object", "properties": {
        "quote": quote,
        "stance": {"type": "string", "enum": ["keep", "decline"]},
        "weight": {"type": "integer", "enum": [1, 2, 3]},
        "why": {"type": "string"},
        "passage": {"type": "string", "enum": list(passage_ids) or ["none"]},
    }, "required": ["quote", "stance", "weight", "why", "passage"],
        "additionalProperties": False}
    rating = {"type": "string", "enum": RATINGS}
    props: dict = {
        "points": {"type": "array", "items": point, "minItems": min(2, sentences or 1),
                   "maxItems": 4},
        "practice": rating, "leverage": rating, "clarity": rating,
    }
    if criteria is not None:
        props["criteria"] = {"type": "array", "maxItems": len(criteria), "items": {
            "type": "object", "properties": {
                "criterion": {"type": "string", "enum": criteria or ["none"]},
                "score": {"anyOf": [{"type": "integer", "enum": [-2, -1, 0, 1, 2]},
                                    {"type": "null"}]},
                "quote": maybe_quote,
            }, "required": ["criterion", "score", "quote"], "additionalProperties": False}}
        props["deal_breakers"] = {"type": "array", "maxItems": deal_breakers, "items": {
            "type": "object", "properties": {
                "deal_breaker": {"type": "integer",
                                 "enum": list(range(1, deal_breakers + 1)) or [1]},
                "quote": quote,
                "resolved_by": maybe_quote,
            }, "required": ["deal_breaker", "quote", "resolved_by"],
            "additionalProperties": False}}
        props["must_haves"] = {"type": "array", "maxItems": must_haves, "items": {
            "type": "object", "properties": {
                "must_have": {"type": "integer", "enum": list(range(1, must_haves + 1)) or [1]},
                "status": {"type": "string", "enum": ["met", "unmet", "unknown"]},
                "quote": maybe_quote,
            }, "required": ["must_have", "status", "quote"], "additionalProperties": False}}
    return {"title": "reflection", "type": "object", "properties": props,
            "required": list(props), "additionalProperties": False}
