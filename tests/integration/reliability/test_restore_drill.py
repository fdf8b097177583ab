"""The restore drill (photosearch_devstack.restore_drill) on a stack of its own: after
catalog is restored from pg_dump, and again after the server is recovered to a named
point in time, search rebuilt from an empty database holds exactly one fingerprint per
catalog image and none of an image catalog does not have."""

from pathlib import Path

import pytest

from photosearch_devstack.restore_drill import run_drill
from tests.support.mesh import mesh_env, model

pytestmark = pytest.mark.slow


def test_search_is_rebuilt_exactly_after_a_dump_restore_and_a_point_in_time_recovery(
    tmp_path: Path,
) -> None:
    env = mesh_env(model(), EMBED_RUNTIME="onnxruntime")
    report = run_drill(tmp_path / "drill", photos=6, extra_env=env)
    assert [c.step for c in report.checks] == [
        "built through the API",
        "catalog from pg_dump, search rebuilt from empty",
        "catalog recovered to a point in time, search rebuilt",
    ]
    for check in report.checks:
        assert check.ok and check.fingerprints == check.catalog_images, check
    # 6 photos, then 3 before the restore point; the 3 after it and a deletion are undone.
    assert [c.catalog_images for c in report.checks] == [6, 6, 9]
    assert len(report.notes) == 2 and all(n.startswith("ok: ") for n in report.notes), report.notes
    assert report.ok
