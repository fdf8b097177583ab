"""The cross-validated part of the quality report: figures per dataset for each way an
answer was computed (held out offline, held out through the mesh, search's shipped
parameters), and the parameters each fold chose."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tools.quality.evidence import Params

COLUMNS = (
    ("r1", "R@1"),
    ("r5", "R@5"),
    ("mrr", "MRR"),
    ("candidate_recall", "cand. R"),
    ("match_share", "match"),
    ("match_precision", "match prec."),
    ("possible_share", "possible"),
    ("possible_precision", "possible prec."),
    ("no_match_share", "no match"),
    ("outside_no_match", "not in catalog: no match"),
    ("outside_match", "not in catalog: match"),
)


def _cell(value: float) -> str:
    return (
        "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def table(rows: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """rows: how ("offline, held out", ...) -> dataset -> summary."""
    head = "| dataset | answered | queries | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|---" * (3 + len(COLUMNS)) + "|"]
    datasets = sorted({d for per in rows.values() for d in per})
    for dataset in datasets:
        for how, per in rows.items():
            if dataset not in per:
                continue
            s = per[dataset]
            cells = " | ".join(_cell(s.get(key, math.nan)) for key, _ in COLUMNS)
            lines.append(f"| {dataset} | {how} | {int(s['queries'])} | {cells} |")
    return "\n".join(lines)


def describe(params: Params) -> dict[str, Any]:
    r, b = params.rerank, params.bands
    return {
        "top_k": r.top_k,
        "region_candidates": params.regions,
        "weight": r.weight,
        "margin": r.margin,
        "min_inliers": r.min_inliers,
        "verified_above": b.verified_above,
        "match_margin": b.match_margin,
        "possible_above": round(b.possible_above, 4),
    }


def markdown(
    rows: Mapping[str, Mapping[str, Mapping[str, float]]],
    chosen: Sequence[Mapping[str, Any]],
    shipped: Mapping[str, Any],
    folds: int,
    seed: int,
    on_every_item: Mapping[str, Any] | None = None,
) -> str:
    """`chosen`, `shipped`, `on_every_item`: parameters as `describe` gives them."""
    lines = [
        f"## Cross-validated ({folds} item-disjoint folds, seed {seed})\n",
        "Each fold's queries are answered with parameters chosen on the other folds' items; "
        '"shipped" is search\'s defaults (chosen on every item: in-sample). Bands count '
        'queries of catalog items; "not in catalog" is the same photos searched with '
        "their item left out.\n",
        table(rows),
        "\nChosen per fold:\n",
    ]
    for fold, params in enumerate(chosen):
        lines.append(f"- fold {fold}: `{dict(params)}`")
    lines.append(f"- shipped: `{dict(shipped)}`")
    if on_every_item is not None:
        same = "the same as shipped" if dict(on_every_item) == dict(shipped) else "NOT what ships"
        lines.append(f"- chosen on every item ({same}): `{dict(on_every_item)}`")
    lines.append("")
    return "\n".join(lines)
