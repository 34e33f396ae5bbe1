"""Record and replay model requests at the HTTP layer, under the real openai client.

A recording is one JSON file per request, named by a canonical hash of what decides the
answer: the request body (model, messages, tools or response format, sampling) and the
prompt version. Headers are never stored, so keys never reach a recording. Replay is
strict: a missing key is an error naming the case, the nearest recording and what differs.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from pipeline.errors import DebriefError
from pipeline.files import write_text

current_case: contextvars.ContextVar[str] = contextvars.ContextVar("current_case", default="")
# the prompt the current case is rendered with (reflect-profile-v1 under a profile); part of
# every key, so a recording says which prompt produced its request
current_prompt: contextvars.ContextVar[str] = contextvars.ContextVar("current_prompt",
                                                                     default="")
_VOLATILE = {"stream", "user", "metadata", "store"}


class RecordingMissing(DebriefError):
    """Replay found no recording for a request."""


def canonical_request(body: dict[str, Any], prompt_version: str) -> dict[str, Any]:
    req = {k: v for k, v in sorted(body.items()) if k not in _VOLATILE}
    return {"prompt_version": prompt_version, "request": req}


def request_key(body: dict[str, Any], prompt_version: str) -> str:
    blob = json.dumps(canonical_request(body, prompt_version), sort_keys=True,
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:10]


def _facets(canon: dict[str, Any]) -> dict[str, str]:
    req = canon["request"]
    msgs = req.get("messages") or []
    facets = {"prompt_version": canon.get("prompt_version", ""), "model": str(req.get("model"))}
    for k in ("temperature", "top_p", "max_tokens", "seed", "tool_choice"):
        if k in req:
            facets[k] = json.dumps(req[k], sort_keys=True)
    facets["schema"] = _digest([req.get("tools"), req.get("response_format")])
    facets["system message"] = _digest([m for m in msgs if m.get("role") == "system"])
    facets["notes/user message"] = _digest([m for m in msgs if m.get("role") == "user"][:1])
    facets["turns"] = str(len(msgs))
    # a retry carries the model's earlier answer and the validation feedback
    facets["retry turns (earlier answer, feedback)"] = _digest(msgs[2:])
    return facets


class RecordingStore:
    def __init__(self, root: Path, prompt_version: str) -> None:
        self.root = Path(root)
        self.prompt_version = prompt_version

    def version(self) -> str:
        return current_prompt.get() or self.prompt_version

    def key(self, body: dict[str, Any]) -> str:
        return request_key(body, self.version())

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None

    def all(self) -> list[dict[str, Any]]:
        if not self.root.is_dir():
            return []
        out = []
        for p in sorted(self.root.glob("*.json")):
            if p.name == "manifest.json":
                continue
            try:
                out.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue
        return out

    def save(self, key: str, body: dict[str, Any], status: int, response: dict[str, Any],
             provenance: dict[str, Any]) -> None:
        record = {
            "key": key,
            "case": current_case.get(),
            "canonical": canonical_request(body, self.version()),
            "status": status,
            "response": response,
            "provenance": provenance,
        }
        write_text(self.path(key), json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n")

    def explain_miss(self, body: dict[str, Any], key: str) -> str:
        """Name the nearest recording (same case first) and the facets that differ."""
        canon = canonical_request(body, self.version())
        want = _facets(canon)
        case = current_case.get()
        best: tuple[int, str, list[str]] | None = None
        for rec in self.all():
            have = _facets(rec.get("canonical", {"request": {}}))
            diff = [f for f in want if want[f] != have.get(f)]
            score = len(diff) - (100 if case and rec.get("case") == case else 0)
            if best is None or score < best[0]:
                best = (score, rec.get("key", "?"), diff)
        where = f"case '{case}': " if case else ""
        if best is None:
            return f"{where}no recording for request {key}; there are no recordings in {self.root}."
        return (f"{where}no recording for request {key}; nearest is {best[1]}, which differs in "
                f"{', '.join(best[2]) or 'nothing visible (body details)'}. Re-record with "
                "'debrief eval --mode openai --record-missing'.")


class ReplayTransport(httpx.BaseTransport):
    """Answers from recordings only; never touches the network."""

    def __init__(self, store: RecordingStore) -> None:
        self.store = store
        self.misses: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        key = self.store.key(body)
        rec = self.store.load(key)
        if rec is None:
            msg = self.store.explain_miss(body, key)
            self.misses.append(msg)
            # 400 is not retried by the openai client, and carries the reason up
            return httpx.Response(400, json={"error": {"message": msg, "type": "replay_miss"}},
                                  request=request)
        return httpx.Response(rec["status"], json=rec["response"], request=request)


class RecordingTransport(httpx.BaseTransport):
    """Forwards to the real server and stores each successful exchange."""

    def __init__(self, store: RecordingStore, provenance: dict[str, Any],
                 only_missing: bool = False, inner: httpx.BaseTransport | None = None) -> None:
        self.store = store
        self.provenance = provenance
        self.only_missing = only_missing
        self.inner = inner or httpx.HTTPTransport()
        self.recorded = 0
        self.reused = 0
        self.failed_cases: set[str] = set()  # cases with a request that got no answer to keep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        key = self.store.key(body)
        if self.only_missing:
            rec = self.store.load(key)
            if rec is not None:
                self.reused += 1
                return httpx.Response(rec["status"], json=rec["response"], request=request)
        try:
            response = self.inner.handle_request(request)
            response.read()
        except Exception:
            self.failed_cases.add(current_case.get())
            raise
        if response.status_code != 200:
            self.failed_cases.add(current_case.get())
        else:
            prov = dict(self.provenance, recorded_at=datetime.now(UTC).isoformat(timespec="seconds"))
            self.store.save(key, body, 200, response.json(), prov)
            self.recorded += 1
        return response

    def close(self) -> None:
        self.inner.close()
