"""Build the provider the settings name: the one place an engine is chosen and made."""

from __future__ import annotations

from typing import Any

from pipeline.llm.base import Provider
from pipeline.llm.local.provider import local_alias, local_ready, start_local
from pipeline.llm.offline.engine import OfflineEngine
from pipeline.llm.openai_provider import DEFAULT_MODEL, OpenAIProvider
from pipeline.settings import ProviderSettings


def engine_for(settings: ProviderSettings) -> str:
    """offline, openai or local: the settings' rule, told whether a local model is there."""
    if settings.provider != "auto":
        return settings.provider
    return settings.engine(local_ready=local_ready(settings.local_model_path))


def describe(settings: ProviderSettings) -> tuple[str, str | None]:
    """The (engine, model) ``make_provider`` would build, without building it."""
    engine = engine_for(settings)
    if engine == "offline":
        return OfflineEngine.name, OfflineEngine.model
    if engine == "local":
        return "local", local_alias(settings.local_model_path)
    return OpenAIProvider.name, settings.model or DEFAULT_MODEL


def make_provider(settings: ProviderSettings, *, http_client: Any = None) -> Provider:
    engine = engine_for(settings)
    if engine == "offline":
        return OfflineEngine()
    if engine == "local":
        return start_local(settings.local_model_path,
                           timeout=settings.request_timeout("local"),
                           max_retries=settings.max_retries, max_tokens=settings.max_tokens,
                           method=settings.structured_output, http_client=http_client,
                           threads=settings.local_threads)
    return OpenAIProvider(model=settings.model, api_key=settings.api_key,
                          base_url=settings.base_url, method=settings.structured_output,
                          timeout=settings.request_timeout("openai"),
                          max_retries=settings.max_retries, http_client=http_client,
                          max_tokens=settings.max_tokens)
