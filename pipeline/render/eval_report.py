"""An eval report as Markdown."""

from __future__ import annotations

from typing import Any


def eval_report_markdown(report: dict[str, Any], metric_names: list[str]) -> str:
    """``metric_names``: the metrics to list, in order (the gate owns which ones)."""
    m = report["metrics"]
    v = report["versions"]
    prompt = v["prompt_version"]
    if v.get("profile_prompt_version"):  # reports before it was recorded lack it
        prompt += f" (with a profile: {v['profile_prompt_version']})"
    lines = [f"# debrief eval: {report['mode']}", "",
             f"Engine {v['engine']} / {v['model']} · prompt {prompt} · index "
             f"{v['index_fingerprint']} · cases {v['cases_digest']} · tool {v['tool']}", "",
             "| metric | value |", "| --- | --- |"]
    for name in metric_names:
        if name in m:
            lines.append(f"| {name} | {m.get(name)} |")
    if any(row["n"] for row in m.get("reliability_heldout", [])):
        lines += ["", "## Calibration on held-out (confidence → how often right)", "",
                  "| confidence | cases | accuracy |", "| --- | --- | --- |"]
        lines += [f"| {row['confidence']} | {row['n']} | {row['accuracy']} |"
                  for row in m["reliability_heldout"]]
    lines += ["", "## Confusion (expected → got)", "", "| expected | keep | decline | error |",
              "| --- | --- | --- | --- |"]
    for exp, row in m["confusion"].items():
        lines.append(f"| {exp} | {row.get('keep', 0)} | {row.get('decline', 0)} | {row.get('error', 0)} |")
    lines += ["", "## Accuracy by tag", "", "| tag | n | accuracy |", "| --- | --- | --- |"]
    for tag, row in m["accuracy_by_tag"].items():
        lines.append(f"| {tag} | {row['n']} | {row['accuracy']} |")
    failures = [r for r in report["cases"] if not r["correct"] or r["error"]]
    lines += ["", f"## Failures ({len(failures)})", ""]
    if failures:
        lines += ["| case | expected | got | recall | error |", "| --- | --- | --- | --- | --- |"]
        for r in failures:
            err = (r["error"] or "").replace("|", "/")[:160]
            lines.append(f"| {r['id']} | {r['expected']} | {r['decision']} | {r['recall']:.2f} | {err} |")
    if report.get("profile_cases"):
        lines += ["", "## Profile cases (decision matrix)", "",
                  "| case | profile | expected | got | deal-breakers found | score agreement | error |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in report["profile_cases"]:
            err = (r["error"] or "").replace("|", "/")[:120]
            agree = "" if r["score_agreement"] is None else f"{r['score_agreement']:.2f}"
            lines.append(f"| {r['id']} | {r['profile']} | {r['expected']} | {r['decision']} | "
                         f"{'; '.join(r['deal_breakers_found'])} | {agree} | {err} |")
    if report.get("compare_sets"):
        lines += ["", "## Compare sets", "", "| set | gold ranking | predicted | tau | errors |",
                  "| --- | --- | --- | --- | --- |"]
        for c in report["compare_sets"]:
            lines.append(f"| {c['id']} | {' > '.join(c['gold'])} | {' > '.join(c['predicted'])} "
                         f"| {c['kendall_tau']} | {len(c['errors'])} |")
    if report.get("regressions"):
        lines += ["", "## Regressions against the baseline", ""]
        lines += [f"- {x}" for x in report["regressions"]]
    return "\n".join(lines) + "\n"
