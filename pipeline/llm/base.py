"""The one seam every engine implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pipeline.notes import Notes
from pipeline.profile import Profile
from pipeline.retrieve import Retrieval
from pipeline.schema import ReflectionDraft

Message = tuple[str, str]  # (role, content)


@dataclass
class Attempt:
    """One answer: parsed draft (or None), the raw text for feedback, and any parse error."""

    draft: ReflectionDraft | None
    raw: str
    error: str | None = None
    usage: dict[str, int] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    model: str | None

    def complete(self, messages: list[Message], notes: Notes, retrieval: Retrieval,
                 profile: Profile | None = None) -> Attempt:
        """Answer the rendered messages. The offline engine reads notes/retrieval instead.
        With a profile the answer is a ``ProfiledDraft`` (the draft plus its matrix)."""
        ...
