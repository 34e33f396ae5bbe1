"""``python -m pipeline.llm.local.serve``: llama-cpp-python's OpenAI-compatible server, our way.

The only module of ours that imports llama_cpp; it runs in the child process LocalServer
starts. We build llama_cpp.server's own app rather than run ``python -m llama_cpp.server``
because, in llama-cpp-python 0.3.36:

- ``use_extra_bufts`` is not a server setting (nor a ``Llama()`` argument); it lives only in
  the C model params, so we set it through ``llama_model_default_params``. Turning it off
  avoids the AMX kernel that crashes a native (AMX) build on its first completion, but it
  also turns off weight repacking, which made prompts 2.5x slower on a build without AMX;
  so ``auto`` turns it off only when the loaded llama.cpp reports AMX;
- its ``__main__`` lets ``$HOST``/``$PORT`` override the flags, and every setting also reads a
  same-named environment variable (``API_KEY``, ``CACHE``, ``CONFIG_FILE``...), so a user's
  shell could silently change or lock the server;
- it binds the port itself, so a port the parent picked could be taken in between; we are
  handed the already-bound socket instead (``--fd``), which removes that race.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import threading
import time


def _watch_parent(parent_pid: int) -> None:
    """Stop when debrief is gone, even if it was killed without a chance to stop us."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5.0)
    os._exit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.llm.local.serve")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--fd", type=int, help="an inherited socket bound to 127.0.0.1")
    where.add_argument("--port", type=int, help="bind 127.0.0.1:PORT ourselves (no fd passing)")
    parser.add_argument("--model", required=True)
    parser.add_argument("--model_alias", required=True)
    parser.add_argument("--n_ctx", type=int, default=8192)
    parser.add_argument("--n_threads", type=int, required=True)
    parser.add_argument("--n_threads_batch", type=int, required=True)
    parser.add_argument("--use_extra_bufts", choices=("auto", "true", "false"), default="auto")
    parser.add_argument("--parent_pid", type=int)
    args = parser.parse_args(argv)

    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()

    import llama_cpp.llama_cpp as llama_c
    from llama_cpp.server.settings import Settings

    for name in list(os.environ):
        if name.lower() in Settings.model_fields or name.upper() == "CONFIG_FILE":
            del os.environ[name]

    use_extra_bufts = args.use_extra_bufts == "true"
    if args.use_extra_bufts == "auto":
        system_info = llama_c.llama_print_system_info().decode("utf-8", "replace")
        use_extra_bufts = re.search(r"\bAMX\w* = 1", system_info) is None
        print(f"debrief: use_extra_bufts={use_extra_bufts} (auto; {system_info.strip()})", flush=True)
    if not use_extra_bufts:
        default_params = llama_c.llama_model_default_params

        def model_params_without_extra_bufts():  # type: ignore[no-untyped-def]
            params = default_params()
            params.use_extra_bufts = False
            return params

        llama_c.llama_model_default_params = model_params_without_extra_bufts

    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    app = create_app(
        server_settings=ServerSettings(host="127.0.0.1", port=args.port or 0, api_key=None),
        model_settings=[ModelSettings(
            model=args.model, model_alias=args.model_alias, n_ctx=args.n_ctx,
            n_threads=args.n_threads, n_threads_batch=args.n_threads_batch,
            # the server's default (True) keeps logits for every prompt token: gigabytes of
            # RAM and extra compute, needed only for `logprobs`, which debrief never asks for
            logits_all=False,
        )],
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port or 0, log_level="info",
                            timeout_graceful_shutdown=3)
    sockets = [socket.socket(fileno=args.fd)] if args.fd is not None else None
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
