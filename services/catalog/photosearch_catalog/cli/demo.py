"""A small demo catalog from the sample photos that ship inside scikit-image's
wheel (skimage/data; nothing is downloaded), so a new user can try recognition
at once. Idempotent: every item has a stable import key.

    python -m photosearch_catalog.cli.demo --catalog 127.0.0.1:50051 [--if-empty]
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from photosearch.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from photosearch_catalog.cli.importer import Totals, import_and_report, run_import, say
from photosearch_catalog.cli.plan import ImportPlan, PlannedImage, PlannedItem
from photosearch_catalog.domain import ItemFields

# (files in skimage/data, name, series, year): photos of things, not textures or charts.
DEMO_ITEMS: list[tuple[tuple[str, ...], str, str, int]] = [
    (("astronaut.png",), "Astronaut Eileen Collins", "NASA portraits", 0),
    (("chelsea.png",), "Chelsea the Cat", "Animals", 0),
    (("coffee.png",), "Cup of Coffee", "Tableware", 0),
    (("rocket.jpg",), "Falcon 9 Rocket", "Spacecraft", 0),
    (("camera.png",), "The Cameraman", "Classic test images", 0),
    (("coins.png",), "Greek Coins", "Coins", 0),
    (("motorcycle_left.png", "motorcycle_right.png"), "Motorcycle", "Vehicles", 0),
    (("hubble_deep_field.jpg",), "Hubble Deep Field", "Space photographs", 1995),
    (("moon.png",), "The Moon", "Space photographs", 0),
    (("horse.png",), "Horse Silhouette", "Animals", 0),
    (("logo.png",), "scikit-image Logo", "Logos", 0),
    (("retina.jpg",), "Human Retina", "Medical images", 0),
    (("ihc.png",), "Immunohistochemistry Slide", "Medical images", 0),
    (("color.png",), "Colour Wheel", "Charts", 0),
    (("clock_motion.png",), "Wall Clock", "Household", 0),
    (("page.png",), "Printed Page", "Documents", 0),
]


def sample_folder() -> Path:
    try:
        import skimage.data
    except ImportError:
        raise SystemExit(
            "the demo catalog needs scikit-image: pip install 'photosearch-catalog[demo]'"
        ) from None
    return Path(skimage.data.__file__).parent


def demo_plan(folder: Path) -> ImportPlan:
    plan = ImportPlan()
    for files, name, series, year in DEMO_ITEMS:
        paths = [folder / f for f in files]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:  # a scikit-image release without this sample
            plan.skipped.append((", ".join(missing), "not in this scikit-image"))
            continue
        fields = ItemFields(
            name=name,
            series=series,
            year=year,
            maker="scikit-image sample data",
            tags=("demo",),
            attributes={"source": "skimage.data/" + ", ".join(files)},
        )
        plan.items.append(
            PlannedItem(
                f"demo:{files[0].rsplit('.', 1)[0]}", fields, [PlannedImage(p) for p in paths]
            )
        )
    return plan


def catalog_is_empty(stub: catalog_pb2_grpc.CatalogServiceStub) -> bool:
    page = stub.ListItems(catalog_pb2.ListItemsRequest(page_size=1), timeout=10)
    return not page.items


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m photosearch_catalog.cli.demo")
    parser.add_argument("--catalog", default="127.0.0.1:50051", help="catalog gRPC address")
    parser.add_argument(
        "--if-empty", action="store_true", help="only when the catalog has no items yet"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    plan = demo_plan(sample_folder())

    def load(stub: catalog_pb2_grpc.CatalogServiceStub) -> Totals | None:
        if args.if_empty and not catalog_is_empty(stub):
            say("the catalog already has items: demo catalog not loaded")
            return None
        say(f"demo catalog: {len(plan.items)} items from scikit-image's sample photos")
        return run_import(stub, plan, show_progress=not args.quiet)

    return import_and_report(args.catalog, load)


if __name__ == "__main__":
    sys.exit(main())
