"""Errors the user can act on. The core raises them; only the command layer knows Click.

Every message is redacted on the way in: a server's error body can echo the request's
``Authorization`` header, and a URL can carry credentials, and messages are printed and
stored (batch state, digest).
"""

from __future__ import annotations

import os
import re

# what a secret looks like in a message: keys, bearer tokens, URL credentials, key-like
# query parameters, and an Authorization header echoed back
_SECRETS = [
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 ***"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), "sk-***"),
    (re.compile(r"(?<=://)[^/\s:@]+(?::[^/\s@]*)?@"), "***@"),
    (re.compile(r"(?i)([?&](?:api[-_]?key|key|token|access[-_]?token|auth|password|secret|"
                r"sig|signature)=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\s,}]+"), r"\1***"),
]
SECRET_ENV = ("OPENAI_API_KEY", "DEBRIEF_CHROMA_TOKEN")


def redact(text: str) -> str:
    """``text`` with keys, tokens and URL credentials replaced by ***."""
    for name in SECRET_ENV:
        value = os.environ.get(name, "")
        if len(value) >= 6:
            text = text.replace(value, "***")
    for pattern, repl in _SECRETS:
        text = pattern.sub(repl, text)
    return text


class DebriefError(Exception):
    """A failure the user can act on, shown as one line and never as a traceback.

    Exit code 2 for bad input and configuration (the CLI contract), 1 for partial failures.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        self.message = redact(" ".join(str(message).split()))
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
