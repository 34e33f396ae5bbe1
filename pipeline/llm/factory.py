"""Build the provider the settings name: the one place an engine is chosen and made."""

from __future__ import annotations

from typing import Any

from pipeline.llm.base import Provider
from pipeline.llm.offline.engine import OfflineEngine
from pipeline.llm.openai_provider import DEFAULT_MODEL, OpenAIProvider
from pipeline.settings import ProviderSettings


def describe(settings: ProviderSettings) -> tuple[str, str | None]:
    """The (engine, model) ``make_provider`` would build, without building it."""
    if settings.engine() == "offline":
        return OfflineEngine.name, OfflineEngine.model
    return OpenAIProvider.name, settings.model or DEFAULT_MODEL


def make_provider(settings: ProviderSettings, *, http_client: Any = None) -> Provider:
    if settings.engine() == "offline":
        return OfflineEngine()
    return OpenAIProvider(model=settings.model, api_key=settings.api_key,
                          base_url=settings.base_url, method=settings.structured_output,
                          timeout=settings.timeout, max_retries=settings.max_retries,
                          http_client=http_client, max_tokens=settings.max_tokens)
