"""One exception type the CLI turns into a one-line message and an exit code."""

from __future__ import annotations

import click


class DebriefError(click.ClickException):
    """A failure the user can act on; shown as one line, never as a traceback.

    Exit code 2 for bad input and configuration (the CLI contract), 1 for partial failures.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


class ModelAnswerInvalid(DebriefError):
    """The model's answer failed validation after the allowed retries."""


class ProviderError(DebriefError):
    """The model server could not be reached, refused, or failed."""


class IndexError_(DebriefError):
    """The Chroma index is missing, corrupt, unreachable or built with another model."""
