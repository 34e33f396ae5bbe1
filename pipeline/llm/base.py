"""The one seam every engine implements: one Request in, one Attempt out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.prompts import Prompt
from pipeline.retrieve import Retrieval
from pipeline.schema import ReflectionDraft

Message = tuple[str, str]  # (role, content)


@dataclass
class Request:
    """What any engine may read: the rendered prompt (messages, the numbered sentences it
    may cite and the answer's schema) for a model; the notes and retrieval for the offline
    engine. ``messages`` grows by the earlier answer and feedback on a retry."""

    prompt: Prompt
    notes: Notes
    retrieval: Retrieval
    profile: Profile | None = None
    messages: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.messages:
            self.messages = list(self.prompt.messages)


@dataclass
class Attempt:
    """One answer: a model's parsed JSON (``answer``) or the offline engine's finished
    ``draft``; the raw text for feedback, and any parse error."""

    answer: dict[str, Any] | None = None
    draft: ReflectionDraft | None = None
    raw: str = ""
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    model: str | None

    def complete(self, request: Request) -> Attempt:
        ...

    def close(self) -> None:
        """Release what the provider holds (a local model server); idempotent."""
        ...
