"""`debrief eval`: score the pipeline on labelled cases; `debrief eval bless` sets the baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from pipeline.commands.options import index_options, int_range, provider_options
from pipeline.settings import IndexSettings, ProviderSettings


@click.group(invoke_without_command=True)
@click.option("--mode", type=click.Choice(["replay", "offline", "openai", "local"]),
              default="replay",
              show_default=True,
              envvar="DEBRIEF_EVAL_MODE",
              help="replay: recorded model answers, offline. offline: the offline engine. "
                   "openai: a live server (OPENAI_API_KEY or OPENAI_BASE_URL). local: the "
                   "local model, started for the run.")
@click.option("--record", is_flag=True,
              help="With --mode openai or local: re-record every request.")
@click.option("--record-missing", is_flag=True,
              help="With --mode openai or local: record only requests that have no "
                   "recording yet (resumes an interrupted recording).")
@click.option("--cases", "cases_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("eval/cases"), show_default=True, help="Folder of labelled cases.")
@click.option("--profile-cases", "profile_cases_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Cases under a priorities profile [default: profile-cases/ beside the "
                   "cases folder; skipped when absent].")
@click.option("--compare-sets", "compare_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Notes folders with a gold ranking for 'compare' [default: compare/ "
                   "beside the cases folder; skipped when absent].")
@click.option("--profiles", "profiles_dir", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Profiles named by profile cases and compare sets [default: profiles/ "
                   "beside the cases folder].")
@click.option("--split", "splits", multiple=True,
              type=click.Choice(["authored", "dev", "heldout"]),
              help="Only the cases of this split (repeatable) [default: all]. Tune on dev; "
                   "held-out is for measuring (eval/README.md).")
@click.option("--recordings", "rec_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("eval/recordings"), show_default=True)
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("eval/baseline.json"), show_default=True)
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("eval/reports/latest"), show_default=True,
              help="Where report.json and report.md go.")
@click.option("--fail-on-regression", is_flag=True,
              help="Exit 1 when a metric falls below the baseline by more than its tolerance.")
@provider_options(choose=False)
@click.option("-k", "--top-k", "top_k", default=8, show_default=True, type=int_range("top_k"))
@index_options
@click.pass_context
def eval_(ctx: click.Context, mode: str, record: bool, record_missing: bool, cases_dir: Path,
          profile_cases_dir: Path | None, compare_dir: Path | None, profiles_dir: Path | None,
          splits: tuple[str, ...], rec_dir: Path, baseline_path: Path, report_dir: Path, fail_on_regression: bool,
          provider: ProviderSettings, top_k: int, index: IndexSettings) -> None:
    """Measure decisions, retrieval and structure on labelled cases, offline by default.

    Each case is eval/cases/NAME.md (notes) with NAME.yaml (expected decision, gold advice
    ids, tags). Replay answers every model request from eval/recordings/, keyed by a hash
    of the request and prompt version; a request with no recording fails the run and names
    the nearest recording and what differs.

    \b
    Examples:
      debrief eval                                   # replay recorded answers
      debrief eval --mode offline --fail-on-regression
      OPENAI_BASE_URL=http://127.0.0.1:8080/v1 debrief eval --mode openai --record-missing
      debrief eval bless --report-dir eval/reports/latest
    """
    if ctx.invoked_subcommand is not None:
        return
    from pipeline import __version__
    from pipeline.errors import DebriefError
    from pipeline.evaluate.cases import cases_digest, load_cases, load_compare_sets
    from pipeline.evaluate.gate import REPORTED, load_baseline, regressions
    from pipeline.evaluate.metrics import aggregate, aggregate_profile
    from pipeline.evaluate.run import run_compare_sets, run_eval, run_profile_cases
    from pipeline.evaluate.wiring import wire
    from pipeline.files import write_text
    from pipeline.index.open import ensure_index, open_index
    from pipeline.prompts import PROFILE_PROMPT_VERSION, PROMPT_VERSION
    from pipeline.render.eval_report import eval_report_markdown
    from pipeline.schema import SCHEMA_VERSION

    wired = wire(mode, provider, rec_dir, record=record, record_missing=record_missing)
    engine, transport = wired.provider, wired.transport
    only = set(splits) or None
    cases = load_cases(cases_dir, only)
    profile_cases_dir = profile_cases_dir or cases_dir.parent / "profile-cases"
    compare_dir = compare_dir or cases_dir.parent / "compare"
    profiles_dir = profiles_dir or cases_dir.parent / "profiles"
    profile_cases = load_cases(profile_cases_dir, only) if profile_cases_dir.is_dir() else []
    compare_sets = load_compare_sets(compare_dir, only) if compare_dir.is_dir() else []
    unrecorded = 0
    if wired.recorded is not None:  # replay: only what the manifest declares recorded
        listed = len(cases) + len(profile_cases) + len(compare_sets)
        cases = [c for c in cases if c.id in wired.recorded]
        profile_cases = [c for c in profile_cases if c.id in wired.recorded]
        compare_sets = [s for s in compare_sets if s[0] in wired.recorded]
        unrecorded = listed - len(cases) - len(profile_cases) - len(compare_sets)
    advice = open_index(index)
    ensure_index(advice, index.corpus_folders(), lambda m: click.echo(m, err=True))

    def run_all(progress: object = None) -> tuple[list, list, list]:
        def step(case_id: str) -> None:
            wired.mark_recorded(case_id)
            if callable(progress):
                progress(case_id)

        kw = {"k": top_k, "progress": step}
        return (run_eval(cases, advice, engine, **kw),
                run_profile_cases(profile_cases, profiles_dir, advice, engine, **kw),
                run_compare_sets(compare_sets, profiles_dir, advice, engine, **kw))

    total = len(cases) + len(profile_cases) + len(compare_sets)
    try:
        if sys.stderr.isatty():
            from rich.progress import Progress

            with Progress(transient=True) as bar:
                task = bar.add_task(f"eval ({mode})", total=total)
                results, profile_results, compare_results = run_all(
                    lambda _: bar.advance(task))
        else:
            done = [0]

            def line(case_id: str) -> None:  # a long live run shows where it is (logs, CI)
                done[0] += 1
                click.echo(f"eval ({mode}): {done[0]}/{total} {case_id}", err=True)

            results, profile_results, compare_results = run_all(
                line if mode in ("openai", "local") else None)
    finally:
        engine.close()

    metrics = aggregate(results)
    if profile_cases or compare_sets:
        metrics.update(aggregate_profile(profile_results, compare_results))
    if wired.recorded is not None:
        metrics["replayed_items"] = total
        metrics["unrecorded_items"] = unrecorded
    report = {
        "mode": mode,
        "versions": {"tool": __version__, "prompt_version": PROMPT_VERSION,
                     "profile_prompt_version": PROFILE_PROMPT_VERSION,
                     "schema_version": SCHEMA_VERSION, "index_fingerprint": advice.fingerprint(),
                     "engine": engine.name, "model": engine.model,
                     "cases_digest": cases_digest(cases + profile_cases)},
        "metrics": metrics,
        "cases": [r.model_dump() for r in results],
        "profile_cases": [r.model_dump() for r in profile_results],
        "compare_sets": [r.model_dump() for r in compare_results],
    }
    baseline_all = load_baseline(baseline_path)
    baseline = baseline_all.get("modes", {}).get(mode, {})
    if baseline:
        baseline = {"metrics": baseline.get("metrics", {}),
                    "tolerance": baseline_all.get("tolerance", {})}
    report["regressions"] = regressions(metrics, baseline) if baseline else []

    write_text(report_dir / "report.json", json.dumps(report, indent=2) + "\n")
    write_text(report_dir / "report.md", eval_report_markdown(report, REPORTED))
    if mode == "replay":
        # recordings of a model that fails must not look like a broken gate
        valid = report["metrics"].get("final_valid_rate", 0.0)
        line = (f"replaying recorded answers of {engine.model} ({engine.name}); "
                f"{valid:.0%} of its answers pass validation")
        if valid < 0.5:
            line += ": most of what follows measures a model that fails, not debrief"
        elif valid < 1:
            line += "; the rest count as errors and as wrong calls"
        click.echo(line)
        if unrecorded:
            click.echo(f"replayed the {total} cases, profile cases and compare sets the "
                       f"recordings cover; {unrecorded} more have no recording yet "
                       "(debrief eval --mode local --record-missing adds them)")
    _print_summary(report, baseline)
    click.echo(f"report: {report_dir / 'report.md'}", err=True)

    misses = getattr(transport, "misses", [])
    if misses:
        for m in misses[:10]:
            click.echo(f"replay miss: {m}", err=True)
        raise DebriefError(f"{len(misses)} request(s) had no recording (see above); replay never "
                           "falls back to a live call.", exit_code=1)
    if hasattr(transport, "recorded"):
        click.echo(f"recorded {transport.recorded} request(s), reused {transport.reused}.", err=True)
    if fail_on_regression:
        if not baseline:
            raise DebriefError(f"no baseline for mode '{mode}' in {baseline_path}; run "
                               "'debrief eval bless' first.", exit_code=1)
        if report["regressions"]:
            for r in report["regressions"]:
                click.echo(f"REGRESSION {mode}: {r}", err=True)
            raise DebriefError(f"{len(report['regressions'])} metric(s) regressed against "
                               f"{baseline_path}.", exit_code=1)
        click.echo(f"gate passed: no metric below the {mode} baseline beyond tolerance.", err=True)


def _print_summary(report: dict, baseline: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from pipeline.evaluate.gate import REPORTED

    m = report["metrics"]
    table = Table(title=f"debrief eval · {report['mode']} · {report['versions']['engine']} "
                        f"/ {report['versions']['model']} · {m['cases']} cases")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("baseline", justify="right")
    for name in (n for n in REPORTED if n != "cases"):
        if name not in m:
            continue
        base = baseline.get("metrics", {}).get(name, "") if baseline else ""
        table.add_row(name, str(m.get(name)), str(base))
    Console(stderr=False, soft_wrap=True).print(table)


@eval_.command()
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("eval/reports/latest"), show_default=True)
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("eval/baseline.json"), show_default=True)
def bless(report_dir: Path, baseline_path: Path) -> None:
    """Make the latest report's metrics the baseline for its mode (a deliberate act)."""
    from pipeline.errors import DebriefError
    from pipeline.evaluate.gate import DEFAULT_TOLERANCE, GATED, load_baseline
    from pipeline.files import write_text

    src = report_dir / "report.json"
    if not src.is_file():
        raise DebriefError(f"no report at {src}; run 'debrief eval' first.")
    report = json.loads(src.read_text(encoding="utf-8"))
    base = load_baseline(baseline_path) or {"tolerance": {"default": DEFAULT_TOLERANCE},
                                             "modes": {}}
    base.setdefault("modes", {})[report["mode"]] = {
        "metrics": {k: report["metrics"][k] for k in GATED if k in report["metrics"]},
        "versions": report["versions"],
    }
    write_text(baseline_path, json.dumps(base, indent=2, sort_keys=True) + "\n")
    click.echo(f"blessed {report['mode']} metrics from {src} into {baseline_path}.")
