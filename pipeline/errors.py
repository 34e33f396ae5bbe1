"""Errors the user can act on. The core raises them; only the command layer knows Click."""

from __future__ import annotations


class DebriefError(Exception):
    """A failure the user can act on, shown as one line and never as a traceback.

    Exit code 2 for bad input and configuration (the CLI contract), 1 for partial failures.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        self.message = " ".join(str(message).split())
        super().__init__(self.message)
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ModelAnswerInvalid(DebriefError):
    """The model's answer failed validation after the allowed retries."""


class ProviderError(DebriefError):
    """The model server could not be reached, refused, or failed."""


class IndexError_(DebriefError):
    """The Chroma index is missing, corrupt, unreachable or built with another model."""
