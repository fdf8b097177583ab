"""Benchmark: retrieval quality on the shared datasets (manifest.csv format).

Mesh mode starts the real services (catalog, search, embedder) as processes, imports
each dataset's catalog rows through catalog's gRPC import, waits until search's index
status has nothing pending, then fingerprints every query photo with the embedder's
Embed RPC and asks search's Search RPC as the gateway does for a browser: with the
fingerprint alone ("global") and as the page searches, with local descriptors
("service-rerank"). Offline mode computes the same in-process (same ONNX files, same
preprocessing, search's own re-ranking code); the two must agree, and the report says
whether they do. Offline mode also evaluates the ablation's techniques (tools/quality).

The robustness suite transforms every catalog photo (crops, brightness, contrast,
mirror, rotations, JPEG q20, blur, grayscale, 64 px, 1:6 strips, pasted small on a
busy background), measures recall@1 per transform, then uploads the copies as new
items and counts the duplicate report's false negatives at its default threshold.

    make bench-quality                                  # mesh + offline, all datasets
    .venv/bin/python bench/quality.py --mode offline --technique service-rerank
    .venv/bin/python bench/quality.py --datasets smvs_dvd_covers --no-robustness

Writes quality.json, quality.md and PNG plots into --out (default results/quality/report)."""

import argparse
import logging
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from tools.quality import cost, duplicates, techniques  # noqa: E402
from tools.quality.datasets import DEFAULT_ROOT, Dataset, Photo, discover, load_dataset  # noqa: E402
from tools.quality.features import compute, exported_model, make_extractor  # noqa: E402
from tools.quality.graph import LOCAL_LAYERS  # noqa: E402
from tools.quality.metrics import summarise  # noqa: E402
from tools.quality.offline import evaluate, prepare  # noqa: E402
from tools.quality.report import DatasetResult, markdown_table, write  # noqa: E402
from tools.quality.robustness import NEAR_DUPLICATE, make_copies, write_suite  # noqa: E402

NEAR_DUPLICATES_DATASET = "near_duplicates"
SERVICE_RERANK = techniques.SERVICE_RERANK


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--datasets", default="", help="comma-separated names (default: all)")
    parser.add_argument("--model", default="efficientnet-lite0-colour")
    parser.add_argument("--mode", choices=["mesh", "offline", "both"], default="both")
    parser.add_argument(
        "--technique",
        action="append",
        default=[],
        help=f"offline technique(s), any of {sorted(techniques.CATALOG)} or {SERVICE_RERANK} "
        "(the services' own re-ranking; default: global and that)",
    )
    parser.add_argument("--no-robustness", action="store_true")
    parser.add_argument(
        "--embed-runtime",
        default="onnxruntime",
        choices=["onnxruntime", "auto", "openvino"],
        help="the mesh embedder's EMBED_RUNTIME (onnxruntime: mesh and offline compute the "
        "same vectors; auto: what a deployment serves, compared with offline onnxruntime)",
    )
    parser.add_argument(
        "--suite-technique",
        action="append",
        default=[],
        help="offline technique(s) also run on the robustness suite (global always is; "
        "re-ranking ~2,000 copies is slow on 2 cores)",
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=2,
        help="item-disjoint folds of the cross-validated figures (0: in-sample only)",
    )
    parser.add_argument("--seed", type=int, default=0, help="of the folds")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quality" / "report")
    parser.add_argument("--cache", type=Path, default=ROOT / "results" / "quality")
    return parser.parse_args()


def duplicate_copies(datasets: list[Dataset], suite: Dataset | None) -> list[tuple[str, Photo]]:
    """(transform, photo) of every copy the duplicate report must pair with its source:
    the suite's copies and the near-duplicates dataset's own query photos."""
    out: list[tuple[str, Photo]] = []
    if suite is not None:
        out += [(q.view, q) for q in suite.queries]
    for d in datasets:
        if d.name == NEAR_DUPLICATES_DATASET:
            out += [(f"nd:{q.view}", _qualified(d.name, q)) for q in d.queries]
    return out


def _qualified(dataset: str, photo: Photo) -> Photo:
    from tools.quality.robustness import qualified

    return qualified(dataset, photo)


def near_duplicate_transforms(pairs: list[tuple[str, Photo]]) -> list[str]:
    return sorted({t for t, _ in pairs if t in NEAR_DUPLICATE or t.startswith("nd:")})


# --- mesh mode ----------------------------------------------------------------------------


def run_mesh(
    args: argparse.Namespace, datasets: list[Dataset], suite: Dataset | None, cv: "CrossValidation"
) -> tuple[list[DatasetResult], dict[str, Any]]:
    from tools.quality.mesh_folds import run_folds
    from tools.quality.mesh_mode import MeshClient, start_mesh
    from tools.quality.robustness import Copy
    from tools.quality.tuning import summary

    results: list[DatasetResult] = []
    info: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="quality-mesh-") as tmp:
        started = time.monotonic()
        images = sum(len(d.catalog) for d in datasets)
        mesh = start_mesh(
            Path(tmp), args.model, args.cache / "models", images, runtime=args.embed_runtime
        )
        client = MeshClient(mesh)
        try:
            info["mesh_start_seconds"] = round(time.monotonic() - started, 1)
            started = time.monotonic()
            expected = sum(client.import_dataset(d) for d in datasets)
            model_id = client.wait_indexed(expected)
            info["import_and_index_seconds"] = round(time.monotonic() - started, 1)
            client.wait_regions(expected)
            info["region_index_seconds"] = round(time.monotonic() - started, 1)
            info["model_id"] = model_id
            client.load_index()
            latencies: dict[str, list[float]] = {}
            reranked = turned = 0
            for d in datasets:
                started = time.monotonic()
                by_technique: dict[str, list[Any]] = {}
                k = min(100, len(d.catalog_items))
                for q in d.queries:
                    answers = client.rank(q, q.path.read_bytes(), [d.name], k, top_k=cv.top_k)
                    for name, answer in answers.items():
                        by_technique.setdefault(name, []).append(answer.ranking)
                        latencies.setdefault(name, []).append(answer.seconds)
                        reranked += answer.reranked
                        turned += answer.turned_views
                for name, rankings in by_technique.items():
                    results.append(
                        DatasetResult(
                            d.name, "mesh", name, rankings, {"queries": time.monotonic() - started}
                        )
                    )
                    print(f"mesh {name} {d.name}: {summarise(rankings).to_json()}", flush=True)
            info["search_ms"] = {name: _latency(v) for name, v in latencies.items()}
            info["reranked_queries"] = reranked
            info["queries_with_turned_views"] = turned
            if cv.folds:
                started = time.monotonic()
                held = run_folds(mesh, client, cv.datasets(datasets), cv.fold_of, cv.chosen)
                info["cross_validated"] = summary([h.scored() for h in held])
                info["cross_validation_seconds"] = round(time.monotonic() - started, 1)
            if suite is not None:
                started = time.monotonic()
                suite_rankings: dict[str, list[Any]] = {}
                for q in suite.queries:
                    answers = client.rank(q, q.path.read_bytes(), [], 10, qualified=True)
                    for name, answer in answers.items():
                        suite_rankings.setdefault(name, []).append(answer.ranking)
                for name, rankings in suite_rankings.items():
                    results.append(
                        DatasetResult(
                            "robustness",
                            "mesh",
                            name,
                            rankings,
                            {"queries": time.monotonic() - started},
                        )
                    )
                copies = duplicate_copies(datasets, suite)
                to_import = [
                    Copy(t, p, "copy", p.path.read_bytes()) for t, p in copies
                ]  # key: transform/copy/<file name>, unique per copy file
                client.import_copies(to_import)
                total = client.catalog_images()
                if total != expected + len(to_import):
                    raise RuntimeError(f"catalog holds {total} images, expected "
                                       f"{expected} + {len(to_import)} copies")  # fmt: skip
                client.wait_indexed(total)
                client.load_index()
                report = client.duplicate_pairs(model_id, limit=1_000_000)
                reported = _reported_copies(client, report, to_import, datasets, suite)
                pairs = [
                    duplicates.PairScore(c.transform, c.key, 1.0 if c.key in reported else 0.0)
                    for c in to_import
                ]
                info["duplicates"] = duplicates.summary(
                    pairs, report.threshold, near_duplicate_transforms(copies), reported
                )
                info["duplicates"]["report_pairs"] = len(report.duplicates)
                info["duplicates"]["catalog_images"] = int(report.images)
                info["duplicates"].pop("threshold")
                info["duplicates"]["default_threshold"] = round(report.threshold, 4)
        finally:
            client.close()
            mesh.stop()
    return results, info


def _reported_copies(client: Any, report: Any, copies: list[Any], datasets: list[Dataset],
                     suite: Dataset | None) -> set[str]:  # fmt: skip
    """Keys of the copies the report paired with their source photo's image."""
    source_image: dict[str, str] = {}  # copy key -> source image id
    copy_image: dict[str, str] = {}  # copy image id -> copy key
    by_item = {f"{d.name}/{p.item}": (d.name, p) for d in datasets for p in d.catalog}
    for c in copies:
        dataset, source = by_item[c.source.item]
        item_uuid = client.index.item_ids[(dataset, source.item)]
        source_image[c.key] = client.image_id(item_uuid, source.path.read_bytes())
        copy_uuid = client.index.item_ids[("robustness", c.key)]
        copy_image[client.image_id(copy_uuid, c.data)] = c.key
    found = set()
    for pair in report.duplicates:
        for mine, other in ((pair.image_id_a, pair.image_id_b), (pair.image_id_b, pair.image_id_a)):
            key = copy_image.get(mine)
            if key is not None and source_image[key] == other:
                found.add(key)
    return found


def _latency(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ms = np.asarray(values) * 1000
    return {
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p99": round(float(np.percentile(ms, 99)), 2),
        "n": len(values),
    }


# --- offline mode -------------------------------------------------------------------------


def run_offline(
    args: argparse.Namespace,
    datasets: list[Dataset],
    suite: Dataset | None,
    names: list[str],
    cv: "CrossValidation",
) -> tuple[list[DatasetResult], dict[str, Any]]:
    local = any(n in techniques.CATALOG and techniques.CATALOG[n].rerank for n in names)
    extractor = make_extractor(args.model, args.cache / "models", local=local)
    cache = args.cache / "cache"
    results = []
    costs: dict[str, dict[str, Any]] = {}
    for name in names:
        if name == SERVICE_RERANK:
            results += run_service_rerank(datasets, cv)
            continue
        technique = techniques.CATALOG[name]
        on_suite = suite is not None and (name == "global" or name in args.suite_technique)
        for d in [*datasets, *([suite] if suite is not None and on_suite else [])]:
            started = time.monotonic()
            rankings = evaluate(extractor, d, technique, cache)
            results.append(
                DatasetResult(
                    d.name, "offline", name, rankings, {"total": time.monotonic() - started}
                )
            )
            print(f"offline {name} {d.name}: {summarise(rankings).to_json()}", flush=True)
            if technique.rerank is not None:
                spent = cost.measure(prepare(extractor, d, technique, cache), technique)
                costs.setdefault(name, {})[d.name] = spent.to_json()
    info: dict[str, Any] = {"cost": costs}
    if suite is not None:
        info["duplicates"] = offline_duplicates(extractor, datasets, suite, cache)
    return results, info


def run_service_rerank(datasets: list[Dataset], cv: "CrossValidation") -> list[DatasetResult]:
    """The services' own answers (embedder's local graph, search's code and its shipped
    parameters), offline, from the evidence the cross-validation uses."""
    from tools.quality.evidence import answer
    from tools.quality.metrics import rank_items

    results = []
    for d in datasets:
        rankings = []
        for q in (q for q in cv.queries if q.dataset == d.name):
            ranked = answer(q, cv.shipped).ranking
            scores = {c.item_id: c.score for c in ranked}
            rankings.append(rank_items(q.key, q.view, q.truth, scores))
        results.append(DatasetResult(d.name, "offline", SERVICE_RERANK, rankings, {}))
        print(f"offline {SERVICE_RERANK} {d.name}: {summarise(rankings).to_json()}", flush=True)
    return results


def offline_duplicates(
    extractor: Any, datasets: list[Dataset], suite: Dataset, cache: Path
) -> dict[str, Any]:
    """Fingerprint similarity of each copy with its source, at the search service's
    default threshold, and the threshold that catches every near-duplicate."""
    from photosearch_search.config import SearchSettings

    default = SearchSettings.model_fields["duplicate_threshold"].default
    copies = duplicate_copies(datasets, suite)
    sources = {p.item: p for p in suite.catalog}
    # The same photo lists as the suite's evaluation, so its cached fingerprints are reused.
    source_vectors = compute(extractor, list(sources.values()), cache, local=False)
    vector_of = {item: f.fingerprints[0] for item, f in zip(sources, source_vectors, strict=True)}
    suite_copies = len(suite.queries)
    copy_vectors = compute(extractor, suite.queries, cache, local=False) + compute(
        extractor, [p for _, p in copies[suite_copies:]], cache, local=False
    )
    pairs = [
        duplicates.PairScore(t, p.key, float(vector_of[p.item] @ f.fingerprints[0]))
        for (t, p), f in zip(copies, copy_vectors, strict=True)
    ]
    near = near_duplicate_transforms(copies)
    out = duplicates.summary(pairs, default, near)
    out["default_threshold"] = out.pop("threshold")
    recommended = duplicates.recommend_threshold(pairs, near)
    matrix = np.stack([vector_of[i] for i in sources])
    out["recommended_threshold"] = round(recommended, 4)
    out["distinct_catalog_pairs_at_default"] = duplicates.distinct_pairs_above(
        matrix, list(sources), default
    )
    out["distinct_catalog_pairs_at_recommended"] = duplicates.distinct_pairs_above(
        matrix, list(sources), recommended
    )
    out["catalog_photos"] = len(sources)
    return out


# --- cross-validation ---------------------------------------------------------------------


@dataclass
class CrossValidation:
    """The evidence of every query (services' code, offline), the folds, what each fold
    chose on the others, and search's shipped parameters."""

    folds: int
    seed: int
    queries: list[Any]
    shipped: Any
    fold_of: dict[tuple[str, str], int] = field(default_factory=dict)
    chosen: list[Any] = field(default_factory=list)
    offline: dict[str, Any] = field(default_factory=dict)
    on_every_item: Any = None  # what search should ship

    @property
    def top_k(self) -> int:
        return int(self.shipped.rerank.top_k)

    def datasets(self, datasets: list[Dataset]) -> list[Dataset]:
        return [d for d in datasets if any(name == d.name for name, _ in self.fold_of)]


def cross_validation(args: argparse.Namespace, datasets: list[Dataset]) -> CrossValidation:
    from photosearch_search.config import SearchSettings
    from tools.quality.evidence import Params, gather
    from tools.quality.service_rerank import ServiceDescriptors
    from tools.quality.tuning import choose, cross_validate, folds, in_sample, summary

    settings = SearchSettings(database_url="")
    shipped = Params(settings.rerank(), settings.region_candidates, settings.bands())
    extractor = make_extractor(args.model, args.cache / "models", local=False)
    service = ServiceDescriptors(
        exported_model(args.model, args.cache / "models"), args.cache / "cache"
    )
    started = time.monotonic()
    queries = gather(extractor, service, datasets, args.cache / "cache", settings.regions().rule)
    cv = CrossValidation(args.folds, args.seed, queries, shipped)
    cv.offline["evidence_seconds"] = round(time.monotonic() - started, 1)
    # Copies of one photo are no catalog of items to choose settings on.
    tuned = [q for q in queries if q.dataset != NEAR_DUPLICATES_DATASET]
    # Photos "not in the catalog" leave out their fold's items (2 folds when none asked).
    cv.fold_of = folds(tuned, args.folds or 2, args.seed)
    in_catalog = in_sample(tuned, shipped, cv.fold_of)
    cv.offline["shipped"] = summary([h.scored() for h in in_catalog])
    if args.folds:
        started = time.monotonic()
        held, cv.chosen = cross_validate(tuned, args.folds, args.seed)
        cv.offline["cross_validated"] = summary([h.scored() for h in held])
        cv.on_every_item = choose(tuned)
        cv.offline["tuning_seconds"] = round(time.monotonic() - started, 1)
    return cv


# --- main ---------------------------------------------------------------------------------


def compare(results: list[DatasetResult]) -> dict[str, Any]:
    """Mesh vs offline, per technique both ran: the same top items and scores, query by
    query."""
    mesh = {(r.name, r.technique): r for r in results if r.mode == "mesh"}
    offline = {(r.name, r.technique): r for r in results if r.mode == "offline"}
    out: dict[str, Any] = {}
    for key in sorted(set(mesh) & set(offline)):
        name = "/".join(key) if key[1] != "global" else key[0]
        a = {x.query: x for x in mesh[key].rankings}
        b = {x.query: x for x in offline[key].rankings}
        same_top = sum(1 for q in a if a[q].items[:1] == b[q].items[:1])
        diffs = [abs(a[q].scores[0] - b[q].scores[0]) for q in a if a[q].scores and b[q].scores]
        sa, sb = summarise(a.values()), summarise(b.values())
        out[name] = {
            "queries": len(a),
            "same_top_item": same_top,
            "max_top_score_difference": round(max(diffs), 6) if diffs else None,
            "recall@1": [round(sa.recall[1], 4), round(sb.recall[1], 4)],
            "recall@5": [round(sa.recall[5], 4), round(sb.recall[5], 4)],
            "agree": same_top == len(a) and sa.recall == sb.recall,
        }
    return out


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    # SIGTERM unwinds like Ctrl-C, so the mesh (and its Postgres and NATS) is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    started = time.monotonic()
    wanted = {n for n in args.datasets.split(",") if n}
    datasets = [
        load_dataset(p) for p in discover(args.datasets_root) if not wanted or p.name in wanted
    ]
    if not datasets:
        print(f"no datasets found in {args.datasets_root}", file=sys.stderr)
        return 2
    exported_model(args.model, args.cache / "models")
    suite = None
    if not args.no_robustness:
        sources = [(d.name, p) for d in datasets for p in d.catalog]
        suite = write_suite(make_copies(sources), args.cache / "robustness")
    names = args.technique or ["global", SERVICE_RERANK]
    unknown = [n for n in names if n != SERVICE_RERANK and n not in techniques.CATALOG]
    if unknown:
        print(f"unknown technique(s) {unknown}; known: {sorted(techniques.CATALOG)} and "
              f"{SERVICE_RERANK}", file=sys.stderr)  # fmt: skip
        return 2
    if args.model not in LOCAL_LAYERS:
        # The ablation's re-ranking needs tools/quality's descriptor graph of the same
        # model; without one only the global techniques and the services' own can run.
        dropped = [n for n in names if n in techniques.CATALOG and techniques.CATALOG[n].rerank]
        if dropped:
            print(f"{args.model}: no local-descriptor graph, so not measured: {dropped}")
        names = [n for n in names if n not in dropped]
    results: list[DatasetResult] = []
    extra: dict[str, Any] = {"model": args.model}
    cv = cross_validation(args, datasets)
    extra["cross_validation"] = cv_json(cv)
    if args.mode in ("mesh", "both"):
        mesh_results, extra["mesh"] = run_mesh(args, datasets, suite, cv)
        results += mesh_results
        write(args.out, results, extra)  # kept even if the offline part fails
    if args.mode in ("offline", "both"):
        offline_results, extra["offline"] = run_offline(args, datasets, suite, names, cv)
        results += offline_results
    extra["mesh_vs_offline"] = compare(results)
    extra["seconds"] = round(time.monotonic() - started, 1)
    folder = write(args.out, results, extra, _extra_markdown(extra))
    print(markdown_table(results, views=False))
    print(_extra_markdown(extra))
    print(f"report in {folder} ({extra['seconds']} s)")
    return 0


def cv_json(cv: CrossValidation) -> dict[str, Any]:
    from tools.quality.cv_report import describe

    return {
        "folds": cv.folds,
        "seed": cv.seed,
        "chosen": [describe(p) for p in cv.chosen],
        "shipped": describe(cv.shipped),
        "chosen_on_every_item": describe(cv.on_every_item) if cv.on_every_item else None,
        "offline": cv.offline,
    }


def _extra_markdown(extra: dict[str, Any]) -> str:
    import json

    from tools.quality.cv_report import markdown

    parts = []
    cv = extra.get("cross_validation") or {}
    rows = {}
    if "cross_validated" in cv.get("offline", {}):
        rows["offline, held out"] = cv["offline"]["cross_validated"]
    if "cross_validated" in (extra.get("mesh") or {}):
        rows["mesh, held out"] = extra["mesh"]["cross_validated"]
    if "shipped" in cv.get("offline", {}):
        rows["offline, shipped (in-sample)"] = cv["offline"]["shipped"]
    if rows:
        chosen, shipped = cv.get("chosen", []), cv.get("shipped", {})
        every = cv.get("chosen_on_every_item")
        parts.append(markdown(rows, chosen, shipped, cv["folds"], cv["seed"], every))
    for key in ("mesh_vs_offline",):
        parts.append(f"## {key}\n\n```json\n{json.dumps(extra.get(key), indent=1)}\n```\n")
    for mode in ("mesh", "offline"):
        dup = (extra.get(mode) or {}).get("duplicates")
        if dup:
            lines = [
                f"## Duplicate report ({mode})\n",
                "| transform | near-duplicate | copies | false negatives | min score | median |",
                "|---|---|---|---|---|---|",
            ]
            for t, row in dup["transforms"].items():
                lines.append(
                    f"| {t} | {row['near_duplicate']} | {row['copies']} | "
                    f"{row['false_negatives']} | {row['min_score']} | {row['median_score']} |"
                )
            rest = {k: v for k, v in dup.items() if k != "transforms"}
            lines.append(f"\n```json\n{json.dumps(rest, indent=1)}\n```\n")
            parts.append("\n".join(lines))
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())
