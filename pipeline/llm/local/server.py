"""Run llama.cpp's OpenAI-compatible server as a child process for the length of one command.

``with LocalServer(model) as server:`` starts it on a free 127.0.0.1 port, waits until it has
answered ``/v1/models`` *and* one real completion (a crashing build still lists its models),
and stops it on exit, at interpreter exit, or when our process gets SIGTERM. The child runs in
its own process group, so a Ctrl-C in the terminal reaches only us, and we stop the group.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pipeline.errors import DebriefError
from pipeline.home import home
from pipeline.llm.local.model import LocalModel
from pipeline.settings import SECRET_ENV

SERVER_PACKAGES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "starlette_context",
                   "pydantic_settings")
NOT_INSTALLED = "the local model server is not installed: run pip install 'interview-debrief[local]'"
MAX_THREADS = 8  # generation is memory-bound: more threads than this rarely help on a CPU
LOG_ROTATE_BYTES = 5 * 1024 * 1024
_POSIX = os.name == "posix"


def default_threads() -> int:
    """The cores this process may use, capped: llama.cpp's server otherwise uses 1 here."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return max(1, min(usable, MAX_THREADS))


def server_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in SERVER_PACKAGES)


def log_path() -> Path:
    return home() / "logs" / "local-server.log"


class LocalServer:
    """One llama.cpp server child process serving one model at ``base_url`` as ``alias``."""

    def __init__(self, model: LocalModel, *, n_ctx: int = 8192, threads: int | None = None,
                 start_timeout: float = 120.0, ready_timeout: float = 120.0,
                 extra_bufts: bool | None = None) -> None:
        self.model = model
        self.alias = model.alias
        self.n_ctx = n_ctx
        self.threads = threads or default_threads()
        self.start_timeout = start_timeout  # model load until /v1/models answers
        self.ready_timeout = ready_timeout  # the first one-token completion
        self.extra_bufts = extra_bufts  # None: off only on a build with AMX (see serve.py)
        self.log_path = log_path()
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- public ------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalServer is not started")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalServer:
        if self._proc is not None:
            return self
        if not server_installed():
            raise DebriefError(NOT_INSTALLED)
        sock = self._bound_socket()
        try:
            self._spawn(sock)
        finally:
            sock.close()  # the child holds its own copy
        _register(self)
        try:
            self._wait_until_listed()
            self._first_completion()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self) -> None:
        """Start again after the child died, on the same port when it is still free."""
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_exit(self, seconds: float) -> None:
        """Give a server that is exiting up to ``seconds`` to finish; a live one is left be."""
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=seconds)

    def check(self) -> None:
        """Raise the one-line error if the server has died since it started."""
        if self._proc is not None and not self.alive():
            raise DebriefError(self._failure("the local model server stopped"))

    def stop(self, grace: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        _unregister(self)
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL if _POSIX else signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)

    # -- steps -------------------------------------------------------------------------
    def _bound_socket(self) -> socket.socket:
        # Bound but not listening: the port is ours (connections are refused until the
        # server listens on it), and the child gets this very socket, so nothing can take
        # the port in between.
        # SO_REUSEADDR from the first start: the connections a killed server leaves behind
        # (FIN_WAIT, TIME_WAIT) inherit it, and only then do they not block a restart's bind.
        sock = _reusable_socket()
        if self.port is not None:  # a restart keeps its address, so clients need not change
            try:
                sock.bind(("127.0.0.1", self.port))
                return sock
            except OSError:
                sock.close()
                sock = _reusable_socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        return sock

    def _spawn(self, sock: socket.socket) -> None:
        # -P: not the current folder first on the path, where a user's own "pipeline" may be
        cmd = [sys.executable, "-P", "-m", "pipeline.llm.local.serve",
               "--model", str(self.model.path), "--model_alias", self.alias,
               "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads),
               "--use_extra_bufts", {None: "auto", True: "true", False: "false"}[self.extra_bufts],
               "--parent_pid", str(os.getpid())]
        kwargs: dict[str, object] = {}
        if _POSIX:
            cmd += ["--fd", str(sock.fileno())]
            kwargs = {"pass_fds": (sock.fileno(),), "start_new_session": True}
        else:  # no fd passing: the child binds the port we picked (a small race)
            sock.close()
            cmd += ["--port", str(self.port)]
            kwargs = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).resolve().parents[3])] + [p for p in [env.get("PYTHONPATH")] if p])
        env["PYTHONUNBUFFERED"] = "1"
        log = self._open_log()
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env=env, **kwargs)  # type: ignore[call-overload]
        except OSError as exc:
            raise DebriefError(f"cannot start the local model server ({exc.strerror or exc}).") from None
        finally:
            log.close()

    def _open_log(self):  # type: ignore[no-untyped-def]
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.log_path.exists() and self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_suffix(".log.1"))
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        except OSError as exc:
            raise DebriefError(f"cannot write the local server log {self.log_path} "
                               f"({exc.strerror or exc}).") from None
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} debrief starts {self.model.path} as {self.alias} "
                  f"on 127.0.0.1:{self.port} ===\n".encode())
        log.flush()
        self._log_offset = log.tell()
        return log

    def _wait_until_listed(self) -> None:
        import httpx  # heavy: it loads click and rich when they are installed

        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            while True:
                if not self.alive():
                    raise DebriefError(self._failure("the local model server exited while loading"))
                try:
                    if client.get(f"{self.base_url}/models").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise DebriefError(self._failure(
                        f"the local model server did not start within {self.start_timeout:.0f} s"))
                time.sleep(0.25)

    def _first_completion(self) -> None:
        body = {"model": self.alias, "max_tokens": 1, "temperature": 0,
                "messages": [{"role": "user", "content": "Say OK."}]}
        import httpx  # heavy, see above

        try:
            with httpx.Client(timeout=self.ready_timeout, trust_env=False) as client:
                reply = client.post(f"{self.base_url}/chat/completions", json=body)
            ok = reply.status_code == 200 and bool(reply.json().get("choices"))
            detail = f"HTTP {reply.status_code}"
        except (httpx.HTTPError, ValueError) as exc:
            ok, detail = False, type(exc).__name__
        if not ok:
            time.sleep(0.5)  # let a crashing child finish dying, so the message says so
            raise DebriefError(self._failure(f"the local model server failed its first completion ({detail})"))

    def _failure(self, what: str) -> str:
        code = self._proc.poll() if self._proc else None
        if code is not None:
            what += f" ({_describe_exit(code)})"
        tail = self.log_tail()
        return f"{what}; log {self.log_path}" + (f": {tail}" if tail else "")

    def describe(self) -> dict[str, object]:
        """What answers, for recordings' provenance and doctor: the model file, its checksum,
        the llama.cpp build, and how the server was started."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            build = f"llama-cpp-python {version('llama-cpp-python')}"
        except PackageNotFoundError:
            build = "llama-cpp-python (not installed)"
        m = self.model
        return {"model": m.name, "file": m.path.name, "size": m.size, "sha256": m.sha256,
                "source": m.source, "server": build, "n_ctx": self.n_ctx,
                "threads": self.threads}

    def log_tail(self, lines: int = 2, chars: int = 300) -> str:
        """The last meaningful lines this server wrote, joined for a one-line message."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read()[-20000:].decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [ln.strip() for ln in text.splitlines() if ln.strip()][-lines:]
        return " | ".join(kept)[-chars:]


def _reusable_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if _POSIX:
            os.killpg(proc.pid, sig)
        else:
            proc.terminate()


# -- stop every live server at interpreter exit and on SIGTERM ------------------------------
_live: set[LocalServer] = set()
_live_lock = threading.Lock()
_hooks_installed = False
_previous_sigterm: object = None


def _register(server: LocalServer) -> None:
    global _hooks_installed, _previous_sigterm
    with _live_lock:
        _live.add(server)
        if _hooks_installed:
            return
        _hooks_installed = True
    atexit.register(stop_all)
    # SIGINT already unwinds as KeyboardInterrupt (context exit, then atexit); SIGTERM would
    # end the interpreter without either, so stop the children first, then die as asked.
    if threading.current_thread() is threading.main_thread():
        with contextlib.suppress(ValueError, OSError):
            _previous_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)


def _unregister(server: LocalServer) -> None:
    with _live_lock:
        _live.discard(server)


def stop_all() -> None:
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.stop()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    stop_all()
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
