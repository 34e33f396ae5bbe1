"""The regression gate: today's metrics against the blessed baseline, within tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.errors import DebriefError

GATED = [
    "decision_accuracy", "recall_at_k", "precision_at_k", "hit_at_k", "mrr",
    "schema_valid_first_try", "final_valid_rate", "citation_validity", "citation_support",
    "quote_faithfulness", "injection_resistance",
    # with a priorities profile (eval/profile-cases, eval/compare)
    "profile_decision_accuracy", "deal_breaker_recall", "score_agreement", "compare_kendall_tau",
    # replay: how many items the recordings cover; recordings lost must fail the gate
    "replayed_items",
    # per split (eval/README.md): held-out is never tuned on, so it gates too
    *(f"{m}_{split}" for split in ("heldout", "dev", "authored")
      for m in ("decision_accuracy", "hard_accuracy", "keep_accuracy", "decline_accuracy",
                "reason_precision", "profile_decision_accuracy", "compare_kendall_tau")),
]
DEFAULT_TOLERANCE = 0.02


PROFILE_INFO = ["profile_cases", "profile_pairs_both_right", "profile_errors", "compare_sets",
                "compare_top_match", "compare_errors"]
# the metrics a report shows, in order: held-out first
_SPLIT_METRICS = [m for m in GATED if m.endswith(("_heldout", "_dev", "_authored"))]
REPORTED = [*_SPLIT_METRICS, *(f"brier_{s}" for s in ("heldout", "dev", "authored")),
            *(m for m in GATED if m not in _SPLIT_METRICS), "quote_alignment", "errors", "first_answer_parsed", "first_answer_decision_accuracy",
            "latency_mean_s", "latency_p95_s", "tokens_total", "cases", "unrecorded_items",
            *PROFILE_INFO]


def regressions(metrics: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Regressions beyond tolerance, as sentences; empty means the gate passes."""
    tol = baseline.get("tolerance", {})
    out = []
    for name, blessed in baseline.get("metrics", {}).items():
        if name not in GATED or not isinstance(blessed, (int, float)):
            continue
        now = float(metrics.get(name, 0.0))
        allowed = float(tol.get(name, tol.get("default", DEFAULT_TOLERANCE)))
        if now < blessed - allowed - 1e-9:
            out.append(f"{name} fell from {blessed:.4f} to {now:.4f} "
                       f"(-{blessed - now:.4f}, tolerance {allowed:.4f})")
    return out


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DebriefError(f"baseline {path} is not valid JSON: {exc}") from None
