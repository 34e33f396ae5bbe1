"""The architecture stays as docs/architecture.md draws it.

The import contracts live in pyproject.toml ([tool.importlinter]); this runs them. The
second test is what the lazy imports are for: `debrief --help` must stay instant.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# what `--help` must never load: the index, the model providers and the terminal renderer
# (and every langchain_* package)
HEAVY = {"chromadb", "langchain", "openai", "onnxruntime", "rich", "numpy", "llama_cpp", "httpx"}
# what the command layer needs before any command runs: typed settings and the config file
HELP_CORE = {"pipeline", "pipeline.errors", "pipeline.settings", "pipeline.home",
             "pipeline.resources"}

LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"

# `debrief --help`, then every command's and subcommand's, in one fresh interpreter
HELP_EVERYTHING = """
import contextlib, io, json, sys
import pipeline.cli

def walk(cmd, path):
    yield path
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from walk(sub, [*path, name])

helps = {}
for args in walk(pipeline.cli.cli, []):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = pipeline.cli.cli.main([*args, "--help"], prog_name="debrief",
                                     standalone_mode=False)
    helps[" ".join(args)] = (code, out.getvalue()[:40])
print(json.dumps({"helps": helps, "modules": sorted(sys.modules)}))
"""


def test_import_contracts_hold(cli_env: dict[str, str]) -> None:
    # --no-cache: nothing is written into the checkout; the check itself takes half a second
    proc = subprocess.run([sys.executable, "-c", LINT, "--no-cache"],
                          capture_output=True, text=True, env=cli_env, cwd=ROOT, timeout=120)
    assert "No module named 'importlinter'" not in proc.stderr, (
        "import-linter is missing: pip install -e '.[test]'")
    assert proc.returncode == 0, (
        "an import breaks the architecture (docs/architecture.md):\n"
        f"{proc.stdout}\n{proc.stderr}")
    assert "0 broken" in proc.stdout, proc.stdout


def test_help_loads_no_heavy_package_and_no_core(cli_env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", HELP_EVERYTHING], capture_output=True,
                          text=True, env=cli_env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)

    helps = found["helps"]
    assert "" in helps and any(" " in c for c in helps), sorted(helps)  # subcommands too
    for command, (code, text) in helps.items():
        assert code == 0 and text.startswith("Usage: debrief"), (command, code, text)

    modules = found["modules"]
    tops = {m.split(".")[0] for m in modules}
    heavy = sorted(t for t in tops if t in HEAVY or t.startswith("langchain"))
    assert heavy == [], f"`debrief --help` loaded {heavy}: import them inside the function"
    core = sorted(m for m in modules if m.startswith("pipeline") and m not in HELP_CORE
                  and m not in ("pipeline.cli", "pipeline.commands")
                  and not m.startswith("pipeline.commands."))
    assert core == [], (
        f"`debrief --help` loaded {core}: command modules import the core inside the command")
