"""What encoding a search answer costs in the gateway: a 10-candidate SearchResult through
the path FastAPI takes for a route with a response model (pydantic validates and dumps it
in its Rust core), against jsonable_encoder + json.dumps and model_dump + json.dumps.

    .venv/bin/python bench/json_encoding.py [--number 5000]
"""

import argparse
import json
import os
import timeit

from fastapi.encoders import jsonable_encoder
from pydantic import TypeAdapter

from photosearch_gateway.schemas import Candidate, ItemSummary, SearchResult


def answer() -> SearchResult:
    candidates = [
        Candidate(
            item=ItemSummary(
                id=f"item-{i:05d}-aaaaaaaaaaaa",
                name=f"Cover {i}",
                series="Series",
                maker="Maker",
                year=2001,
                variant="DVD",
            ),
            image_id=f"img-{i:06d}-bbbbbbbbbbbb",
            score=0.81234 - i * 0.01,
            global_score=0.7712,
            inliers=12,
            verification=0.31,
            verified=i == 0,
            from_regions=False,
            thumbnail_url=f"/api/v1/images/img-{i:06d}/thumbnail",
        )
        for i in range(10)
    ]
    return SearchResult(
        model_id="efficientnet-lite0-colour@1",
        candidates=candidates,
        exact=False,
        reranked=True,
        turned_views_wanted=False,
        band="match",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=5000)
    args = parser.parse_args()
    result, adapter = answer(), TypeAdapter(SearchResult)
    ways = {
        "response model (validate + dump_json, FastAPI's path)": lambda: adapter.dump_json(
            adapter.validate_python(result, from_attributes=True)
        ),
        "model_dump(mode='json') + json.dumps": lambda: json.dumps(
            result.model_dump(mode="json")
        ).encode(),
        "jsonable_encoder + json.dumps": lambda: json.dumps(jsonable_encoder(result)).encode(),
    }
    print(f"{len(result.model_dump_json())} bytes, load average {os.getloadavg()[0]:.2f}")
    for name, encode in ways.items():
        micros = timeit.timeit(encode, number=args.number) / args.number * 1e6
        print(f"{name}: {micros:.1f} us")


if __name__ == "__main__":
    main()
