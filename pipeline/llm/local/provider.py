"""`--provider local`: the openai provider, pointed at a llama.cpp server debrief started.

Nothing about talking to the model differs from any OpenAI-compatible server (the same
client, retries, recordings and validation); this only owns the server's lifetime and asks
for ``json_object`` with the schema, which llama.cpp enforces by grammar.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError, ProviderError
from pipeline.llm.base import Attempt, Request
from pipeline.llm.local.model import DEFAULT_MODEL, locate_model
from pipeline.llm.local.server import LocalServer, server_installed
from pipeline.llm.openai_provider import OpenAIProvider

LOCAL_METHOD = "json_object"
MAX_RESTARTS = 2  # a server that keeps dying is not restarted for ever
EXIT_GRACE = 3.0  # seconds a failed request waits for a dying server to finish exiting
LOCAL_MAX_TOKENS = 700  # a full answer is 150-400 tokens; this stops a model that rambles


def local_ready(user_model: Path | None) -> bool:
    """Whether a local model could be started: the server package and a model (the user's
    file, or the first part of the packaged one). Looks, never imports or starts anything."""
    if not server_installed():
        return False
    if user_model is not None:
        return user_model.is_file()
    return importlib.util.find_spec(DEFAULT_MODEL.parts[0].module) is not None


def local_alias(user_model: Path | None) -> str:
    """The model name a local run records, without locating or starting anything."""
    if user_model is None:
        return DEFAULT_MODEL.alias
    return user_model.stem.lower()


class LocalProvider(OpenAIProvider):
    name = "local"

    def __init__(self, server: LocalServer, *, timeout: float, max_retries: int,
                 max_tokens: int | None, method: str | None = None,
                 http_client: Any = None) -> None:
        super().__init__(model=server.alias, api_key="local", base_url=server.base_url,
                         method=method if method and method != "auto" else LOCAL_METHOD,
                         timeout=timeout, max_retries=max_retries,
                         max_tokens=max_tokens or LOCAL_MAX_TOKENS, http_client=http_client)
        self.server = server
        self.restarts = 0

    def complete(self, request: Request) -> Attempt:
        if not self.server.alive() and self.restarts < MAX_RESTARTS:
            # it died on an earlier note: this note, and the rest of a batch, go on
            self.restarts += 1
            old = self.server.base_url
            self.server.restart()
            if self.server.base_url != old:
                raise DebriefError(f"the local model server stopped and came back at another "
                                   f"address ({self.server.base_url}); run again.")
        self.server.check()
        try:
            return super().complete(request)
        except ProviderError:
            # a server killed mid-answer takes a moment to finish exiting (llama.cpp's threads
            # outlive its main one); wait for that, so this note says the server stopped and
            # the next note starts a new one instead of talking to a dying process
            self.server.wait_exit(EXIT_GRACE)
            raise
        finally:
            self.server.check()  # a server that died mid-answer says so, not "connection refused"

    def close(self) -> None:
        self.server.stop()


def start_local(user_model: Path | None, *, timeout: float, max_retries: int,
                max_tokens: int | None, method: str | None = None,
                http_client: Any = None, threads: int | None = None) -> LocalProvider:
    server = LocalServer(locate_model(user_model), threads=threads).start()
    return LocalProvider(server, timeout=timeout, max_retries=max_retries,
                         max_tokens=max_tokens, method=method, http_client=http_client)
