"""Which provider answers an eval run: recordings (replay), the offline engine, or a live
server, optionally recorded. The command only chooses the mode; this builds it."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from pipeline import __version__
from pipeline.errors import DebriefError
from pipeline.files import write_text
from pipeline.llm.deadline import DeadlineTransport
from pipeline.llm.factory import make_provider
from pipeline.llm.offline.engine import OfflineEngine
from pipeline.llm.recording import RecordingStore, RecordingTransport, ReplayTransport
from pipeline.prompts import PROFILE_PROMPT_VERSION, PROMPT_VERSION
from pipeline.settings import ProviderSettings

MODES = ("replay", "offline", "openai", "local")
LIVE = ("openai", "local")


@dataclass
class Wired:
    provider: Any
    transport: Any = None  # ReplayTransport (misses) or RecordingTransport (counts)
    manifest_path: Path | None = None
    # replay: the case ids the manifest declares recorded (None: an older manifest, all)
    recorded: set[str] | None = None

    def mark_recorded(self, case_id: str) -> None:
        """After a recording run finishes a case: declare it replayable in the manifest,
        unless one of its requests got no answer to record (it would miss on replay)."""
        if self.manifest_path is None or not hasattr(self.transport, "failed_cases"):
            return
        if any(c == case_id or c.startswith(f"{case_id}/")
               for c in self.transport.failed_cases):
            return
        manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        done = set(manifest.get("recorded", []))
        if case_id not in done:
            manifest["recorded"] = sorted(done | {case_id})
            write_text(self.manifest_path, json.dumps(manifest, indent=2) + "\n")


def wire(mode: str, settings: ProviderSettings, rec_dir: Path, *, record: bool = False,
         record_missing: bool = False) -> Wired:
    if (record or record_missing) and mode not in LIVE:
        raise DebriefError("--record and --record-missing need --mode openai or --mode local.")
    if mode == "offline":
        return Wired(OfflineEngine())
    store = RecordingStore(rec_dir, PROMPT_VERSION)
    manifest_path = rec_dir / "manifest.json"
    if mode == "replay":
        if not manifest_path.is_file():
            raise DebriefError(f"no recordings manifest at {manifest_path}; record first with "
                               "--mode openai --record.")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        transport = ReplayTransport(store)
        replayed = ProviderSettings(provider="openai", model=manifest["model"],
                                    base_url="http://replay.invalid/v1",
                                    structured_output=manifest["structured_output"],
                                    timeout=settings.request_timeout("openai"), max_retries=0,
                                    max_tokens=manifest.get("max_tokens"))
        engine = _replaying(replayed, transport)
        engine.name = manifest.get("engine", "openai")
        recorded = manifest.get("recorded")
        return Wired(engine, transport, manifest_path,
                     None if recorded is None else set(recorded))
    live = replace(settings, provider=mode)
    if not (record or record_missing):
        return Wired(make_provider(live))
    transport = RecordingTransport(store, {}, only_missing=record_missing,
                                   inner=DeadlineTransport(live.request_timeout(mode)))
    provider = make_provider(live, http_client=httpx.Client(transport=transport))
    transport.provenance = {
        "engine": provider.name, "model": provider.model,
        "server": _server(provider, live), "structured_output": provider.method,
        "tool_version": __version__,
        "how": f"debrief eval --mode {mode} "
               + ("--record-missing" if record_missing else "--record")}
    manifest = {
        "engine": provider.name, "model": provider.model,
        "structured_output": provider.method, "max_tokens": provider.max_tokens,
        "prompt_versions": [PROMPT_VERSION, PROFILE_PROMPT_VERSION],
        "server": transport.provenance["server"],
        "note": "replay uses this model name and method so request keys match; it replays "
                "the cases listed in 'recorded' (every request of each was recorded)",
        "recorded": _still_recorded(manifest_path, provider, record_missing),
    }
    write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return Wired(provider, transport, manifest_path)


def _still_recorded(manifest_path: Path, provider: Any, record_missing: bool) -> list[str]:
    """Cases already recorded by the same model and prompts: kept when resuming."""
    if not record_missing or not manifest_path.is_file():
        return []
    old = json.loads(manifest_path.read_text(encoding="utf-8"))
    same = (old.get("model") == provider.model and old.get("structured_output") == provider.method
            and old.get("max_tokens") == provider.max_tokens
            and old.get("prompt_versions") == [PROMPT_VERSION, PROFILE_PROMPT_VERSION])
    return list(old.get("recorded", [])) if same else []


def _server(provider: Any, settings: ProviderSettings) -> dict[str, Any] | str:
    """What answered: for a local model its file, checksum and llama.cpp build, else the URL."""
    server = getattr(provider, "server", None)
    if server is None:
        return settings.base_url or "api.openai.com"
    return server.describe()


def _replaying(settings: ProviderSettings, transport: ReplayTransport) -> Any:
    # the replay key stands in for a real one: the transport never sends it anywhere
    from pipeline.llm.openai_provider import OpenAIProvider

    return OpenAIProvider(model=settings.model, api_key="replay", base_url=settings.base_url,
                          method=settings.structured_output, max_retries=0,
                          timeout=settings.timeout, max_tokens=settings.max_tokens,
                          http_client=httpx.Client(transport=transport))
