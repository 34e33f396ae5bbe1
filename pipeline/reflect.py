"""notes -> retrieval -> prompt -> provider -> validated Reflection. The whole pipeline."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.assemble import assemble
from pipeline.errors import DebriefError, ModelAnswerInvalid
from pipeline.index.chroma import AdviceIndex
from pipeline.language import language_notice
from pipeline.llm.base import Attempt, Provider, Request
from pipeline.matrix import apply_matrix
from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.prompts import build_prompt, prompt_version
from pipeline.retrieve import Retrieval, RetrieveOptions, retrieve
from pipeline.schema import NotesInfo, Reflection, ReflectionDraft, Source
from pipeline.validate import align_quotes, draft_problems

MAX_ATTEMPTS = 2  # one answer, and one retry with the validation errors fed back

Status = Callable[[str], None]


def _feedback(errors: list[str]) -> str:
    lines = "\n".join(f"- {e}" for e in errors[:12])
    return ("Your previous answer failed validation:\n" + lines + "\nAnswer again with the full "
            "JSON. Cite only the numbered note sentences and the listed passage ids.")


def generate(provider: Provider, notes: Notes, retrieval: Retrieval,
             status: Status | None = None,
             trace: list[tuple[Attempt, list[str]]] | None = None,
             profile: Profile | None = None,
             left_out: list[str] | None = None) -> tuple[ReflectionDraft, int]:
    """Ask, validate, and retry once with the errors. ``trace`` collects every attempt;
    ``left_out`` gets why the used answer's dropped points were dropped."""
    request = Request(build_prompt(notes, retrieval, profile), notes, retrieval, profile)
    errors: list[str] = []
    for attempt_no in range(1, MAX_ATTEMPTS + 1):
        dropped: list[str] = []
        if status:
            status(f"asking {provider.name} ({provider.model}), attempt {attempt_no}")
        attempt = provider.complete(request)
        draft = attempt.draft
        if draft is None and attempt.answer is not None:
            draft, errors = assemble(attempt.answer, request.prompt, notes, retrieval, profile,
                                     dropped)
            attempt.draft = draft  # what the answer amounted to, for the eval's first-try metrics
        elif draft is None:
            errors = [f"the answer did not fit the schema: {attempt.error or 'unparseable'}"]
        if draft is not None:
            draft = align_quotes(draft, notes.body)
            errors = draft_problems(draft, notes, retrieval, profile)
        if trace is not None:
            trace.append((attempt, errors))
        if draft is not None and not errors:
            if left_out is not None:
                left_out += dropped
            return draft, attempt_no
        request.messages = [*request.messages, ("assistant", attempt.raw[:20000] or "(empty)"),
                            ("user", _feedback(errors))]
    raise ModelAnswerInvalid(
        f"the model's answer failed validation {MAX_ATTEMPTS} times ({errors[0]}"
        f"{f'; and {len(errors) - 1} more' if len(errors) > 1 else ''}); nothing was written."
    )


def reflect_on(notes: Notes, index: AdviceIndex, provider: Provider, *,
            opts: RetrieveOptions | None = None, status: Status | None = None,
            trace: list[tuple[Attempt, list[str]]] | None = None,
            retrieval: Retrieval | None = None, profile: Profile | None = None) -> Reflection:
    if status:
        status("retrieving advice")
    retrieval = retrieval or retrieve(notes, index, opts)
    if not retrieval.passages:
        raise DebriefError("the index returned no passages; run 'debrief index --rebuild'.")
    left_out: list[str] = []
    draft, attempts = generate(provider, notes, retrieval, status, trace, profile, left_out)
    matrix = None
    if profile is not None:
        draft, matrix = apply_matrix(draft, profile, notes, retrieval)  # type: ignore[arg-type]
    return Reflection(
        **draft.model_dump(),
        matrix=matrix,
        engine=provider.name,
        model=provider.model,
        prompt_version=prompt_version(profile),
        index_fingerprint=index.fingerprint(),
        attempts=attempts,
        notes=NotesInfo(path=notes.path, company=notes.company, role=notes.meta.role,
                        date=notes.date, round=notes.meta.round, sha256=notes.sha256),
        sources=[Source(id=p.id, doc_id=p.doc_id, title=p.title, heading=p.heading,
                        stance=p.stance, source=p.source, score=p.score, text=p.text)
                 for p in retrieval.passages],
        ignored_lines=retrieval.ignored,
        notices=[n for n in (language_notice(notes.body, provider.name),
                             left_out_notice(left_out)) if n],
    )


def left_out_notice(left_out: list[str]) -> str | None:
    """Say how many of the model's points were not shown, and why: a reflection that hides
    them would look more certain than the answer it came from."""
    if not left_out:
        return None
    counts = {why: left_out.count(why) for why in dict.fromkeys(left_out)}
    whys = "; ".join(f"{n} {why}" for why, n in counts.items())
    n = len(left_out)
    return f"{n} of the model's points {'was' if n == 1 else 'were'} left out: {whys}."
