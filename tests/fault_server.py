"""A fault-injecting OpenAI-compatible server on 127.0.0.1, for the hardening tests.

Call n of ``POST /v1/chat/completions`` is answered by ``plans[n]`` (the last plan repeats),
or by ``choose(request, n)`` when set (e.g. a fault only for notes that mention a word).
A plan is a fault name (see FAULTS) or ``"ok"``. Answers are built from the request itself:
quotes are copied from the notes between the <<<NOTES markers and citations use the passage
ids listed in the prompt, so an ``"ok"`` answer passes validation. ``GET /v1/models`` lists
``models``. Nothing is written to disk; requests are kept in memory (``seen``).

Works at the socket level where a fault needs it: a reset closes the connection mid-response
with SO_LINGER 0 (the peer gets RST), a truncated body sends a complete HTTP response whose
JSON stops half-way.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.text import normalize_ws, sentences

FAULTS = (
    "429-retry-after",    # 429 with Retry-After: 0
    "429",                # 429 without Retry-After (client backoff)
    "500",
    "reset",              # headers and a third of the body, then RST
    "short-body",         # Content-Length promises more than is sent, then a clean close
    "timeout",            # no answer before the client's timeout
    "truncated",          # a complete HTTP response whose JSON body is cut in half
    "schema",             # well-formed JSON that fails the ReflectionDraft schema
    "refusal",            # {"refusal": "..."} in the message, no content
    "empty",              # an empty answer: no content, no tool call
    "bad-citation",       # cites a made-up passage id
    "cites-unretrieved",  # cites a real corpus passage that was not retrieved (corpus_ids)
    "quotes-injection",   # quotes the notes' injection line as evidence
)
PASSAGE_LINE = re.compile(r"^\[([a-z0-9][a-z0-9-]*#\d+)\] ", re.M)
NOTES_RE = re.compile(r"<<<NOTES\n(.*)\nNOTES>>>", re.S)
REFUSAL = "I'm sorry, I cannot help with that request."


@dataclass
class Request:
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def user(self) -> str:
        return str(self.body["messages"][1]["content"])

    @property
    def notes(self) -> str:
        m = NOTES_RE.search(self.user)
        return m.group(1) if m else ""

    @property
    def passage_ids(self) -> list[str]:
        return PASSAGE_LINE.findall(self.user)


def valid_draft(req: Request) -> dict[str, Any]:
    """A keep decision quoting two real note sentences and citing listed ids."""
    body = normalize_ws(req.notes)
    quotable = [s for s in sentences(req.notes) if len(s) >= 20 and s in body
                and "ignore" not in s.lower() and "system" not in s.lower()]
    ids = req.passage_ids
    return {
        "decision": "keep",
        "confidence": 0.7,
        "summary": "The role looks worth pursuing on what the notes say.",
        "reasons": [
            {"point": "A concrete positive signal.", "quote": quotable[0],
             "passage_ids": [ids[0]], "supports": "keep"},
            {"point": "Another concrete signal.", "quote": quotable[-1],
             "passage_ids": ids[:2], "supports": "keep"},
        ],
        "red_flags": [],
        "practice_value": {"rating": "low", "note": "Little to rehearse."},
        "leverage_value": {"rating": "low", "note": "No other offer in play."},
        "clarity_value": {"rating": "medium", "note": "Clearer about what matters."},
        "practice_plan": [],
        "questions_for_next_round": ["What does a normal week look like?"],
        "next_step": {"kind": "thank_you", "draft": "Thank you for your time today."},
    }


def completion(req: Request, draft: dict[str, Any] | None, *, refusal: str | None = None,
               content: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if refusal is not None:
        message["refusal"] = refusal
    elif draft is not None and req.body.get("tools"):
        name = req.body["tools"][0]["function"]["name"]
        message["tool_calls"] = [{"id": "call_1", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(draft)}}]
        finish = "tool_calls"
    elif draft is not None:
        message["content"] = json.dumps(draft)
    else:
        message["content"] = content if content is not None else ""
    return {
        "id": "chatcmpl-fault", "object": "chat.completion", "created": 0,
        "model": req.body.get("model", "m"),
        "choices": [{"index": 0, "finish_reason": finish, "message": message, "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@dataclass
class FaultServer:
    plans: list[str] = field(default_factory=lambda: ["ok"])
    models: list[str] = field(default_factory=lambda: ["test-model"])
    stall: float = 5.0  # how long "timeout" keeps the client waiting
    choose: Callable[[Request, int], str] | None = None
    corpus_ids: list[str] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    data = {"object": "list", "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                        for m in outer.models]}
                    self._json(200, data)
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    req = Request({k.lower(): v for k, v in self.headers.items()}, json.loads(raw))
                except ValueError as exc:
                    outer.errors.append(f"bad request body: {exc}")
                    self._json(400, {"error": {"message": "bad json"}})
                    return
                with outer._lock:
                    outer.seen.append(req)
                    n = len(outer.seen)
                    plan = (outer.choose(req, n) if outer.choose
                            else outer.plans[min(n, len(outer.plans)) - 1])
                try:
                    outer._answer(self, plan, req)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                except Exception as exc:  # surfaced by check()
                    outer.errors.append(f"{plan}: {type(exc).__name__}: {exc}")
                    raise

            def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        self._handler = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    # -- answers -------------------------------------------------------------------------
    def _answer(self, h: Any, plan: str, req: Request) -> None:
        def err(status: int, headers: dict[str, str] | None = None) -> None:
            h._json(status, {"error": {"message": f"fault server says {status}",
                                       "type": "server_error", "param": None, "code": None}},
                    headers)

        if plan == "ok":
            h._json(200, completion(req, valid_draft(req)))
        elif plan == "429-retry-after":
            err(429, {"Retry-After": "0"})
        elif plan == "429":
            err(429)
        elif plan == "500":
            err(500)
        elif plan == "reset":
            payload = json.dumps(completion(req, valid_draft(req))).encode()
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                          + payload[: len(payload) // 3])
            h.wfile.flush()
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
        elif plan == "short-body":
            payload = json.dumps(completion(req, valid_draft(req))).encode()
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                          + payload[: len(payload) // 2])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
        elif plan == "timeout":
            self._stop.wait(self.stall)
            h.close_connection = True
        elif plan == "truncated":
            payload = json.dumps(completion(req, valid_draft(req))).encode()
            payload = payload[: len(payload) // 2]
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        elif plan == "schema":
            draft = valid_draft(req)
            draft["decision"] = "maybe"
            draft["confidence"] = "very"
            del draft["next_step"]
            h._json(200, completion(req, draft))
        elif plan == "refusal":
            h._json(200, completion(req, None, refusal=REFUSAL))
        elif plan == "empty":
            h._json(200, completion(req, None, content=""))
        elif plan == "bad-citation":
            draft = valid_draft(req)
            draft["reasons"][0]["passage_ids"] = ["not-retrieved-doc#42"]
            h._json(200, completion(req, draft))
        elif plan == "cites-unretrieved":
            draft = valid_draft(req)
            other = next(i for i in self.corpus_ids if i not in req.passage_ids)
            draft["reasons"][0]["passage_ids"] = [other]
            h._json(200, completion(req, draft))
        elif plan == "quotes-injection":
            draft = valid_draft(req)
            line = next(s for s in sentences(req.notes) if "ignore" in s.lower())
            draft["reasons"][0]["quote"] = line
            h._json(200, completion(req, draft))
        else:
            raise ValueError(f"unknown plan {plan!r}")

    # -- control -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def check(self) -> None:
        assert not self.errors, self.errors

    def close(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
