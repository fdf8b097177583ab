"""The results folder: JSON with every number, a markdown table, PNG plots (score
histograms of the right match vs the best wrong one, recall@k curves)."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.quality.metrics import Ranking, by_view, recall_curve, summarise

CURVE_K = 20


@dataclass
class DatasetResult:
    name: str
    mode: str  # "mesh" or "offline"
    technique: str
    rankings: list[Ranking]
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "mode": self.mode,
            "technique": self.technique,
            "overall": summarise(self.rankings).to_json(),
            "views": {v: summarise(rows).to_json() for v, rows in by_view(self.rankings).items()},
            "recall_curve": [round(x, 4) for x in recall_curve(self.rankings, CURVE_K)],
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
        }


def markdown_table(results: Sequence[DatasetResult], views: bool = True) -> str:
    lines = [
        "| dataset | view | mode | technique | queries | R@1 | R@5 | MRR | margin mean | "
        "margin p10 | threshold | precision@t |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, view: str, result: DatasetResult, rows: list[Ranking]) -> str:
        s = summarise(rows)
        return (
            f"| {name} | {view} | {result.mode} | {result.technique} | {s.queries} | "
            f"{s.recall[1]:.3f} | {s.recall[5]:.3f} | {s.mrr:.3f} | {_f(s.margin_mean)} | "
            f"{_f(s.margin_p10)} | {_f(s.threshold)} | {_f(s.precision_at_threshold)} |"
        )

    for result in results:
        lines.append(row(result.name, "**all**", result, result.rankings))
        if views:
            for view, rows in by_view(result.rankings).items():
                lines.append(row(result.name, view, result, rows))
    return "\n".join(lines) + "\n"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def plot(results: Sequence[DatasetResult], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for result in results:
        s = summarise(result.rankings)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        bins = 40
        ax.hist(s.right_scores, bins=bins, alpha=0.6, label="right match")
        ax.hist(s.wrong_scores, bins=bins, alpha=0.6, label="best wrong")
        if s.threshold is not None:
            ax.axvline(s.threshold, color="k", linestyle="--", label=f"threshold {s.threshold:.3f}")
        ax.set_title(f"{result.name} ({result.mode}, {result.technique})")
        ax.set_xlabel("score")
        ax.legend()
        path = folder / f"scores-{result.mode}-{result.technique}-{result.name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for result in results:
        curve = recall_curve(result.rankings, CURVE_K)
        label = f"{result.name} ({result.mode}, {result.technique})"
        ax.plot(range(1, CURVE_K + 1), curve, marker=".", label=label)
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6)
    path = folder / "recall_at_k.png"
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written


def write(
    folder: Path,
    results: Sequence[DatasetResult],
    extra: Mapping[str, Any],
    extra_markdown: str = "",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = {"datasets": [r.to_json() for r in results], **extra}
    (folder / "quality.json").write_text(json.dumps(body, indent=2))
    (folder / "quality.md").write_text(
        "# Retrieval quality\n\n" + markdown_table(results) + "\n" + extra_markdown
    )
    plot(results, folder)
    return folder
