"""The named techniques of the ablation (docs/quality.md), one change at a time."""

from tools.quality.offline import Technique
from tools.quality.rerank import RerankSettings

CATALOG: dict[str, Technique] = {
    "global": Technique("global"),
    "mirror-index": Technique("mirror-index", index_variants=("mirror",)),
    # Local descriptors, mutual nearest neighbours counted, no geometry.
    "mnn": Technique("mnn", rerank=RerankSettings(top_k=20, verify=False, saturate=200)),
    # + affine RANSAC on the matched cells.
    "rerank": Technique("rerank", rerank=RerankSettings(top_k=20)),
    # + the query's local descriptors also of the photo turned 90 and 270 degrees.
    "rerank-rot": Technique(
        "rerank-rot", rerank=RerankSettings(top_k=20), query_rotations=(0, 90, 270)
    ),
    # + 64-d PCA, int8: what would be sent and stored.
    "rerank-rot-64": Technique(
        "rerank-rot-64",
        rerank=RerankSettings(top_k=20),
        query_rotations=(0, 90, 270),
        local_dim=64,
        local_int8=True,
    ),
    # + only the most salient cells per photo (highest local contrast), query and catalog.
    **{
        f"rerank-rot-64-top{cells}": Technique(
            f"rerank-rot-64-top{cells}",
            rerank=RerankSettings(top_k=20),
            query_rotations=(0, 90, 270),
            local_dim=64,
            local_int8=True,
            local_cells=cells,
        )
        for cells in (100, 150, 250)
    },
    "rerank-rot-k50": Technique(
        "rerank-rot-k50", rerank=RerankSettings(top_k=50), query_rotations=(0, 90, 270)
    ),
    # Without the rotated passes, for upright photos (turntable objects).
    "rerank-64": Technique(
        "rerank-64", rerank=RerankSettings(top_k=20), local_dim=64, local_int8=True
    ),
}
RECOMMENDED = "rerank-rot-64"
# The services' own re-ranking: the embedder's local graph and search's code
# (tools/quality/service_rerank.py offline; mesh mode's re-ranked searches).
SERVICE_RERANK = "service-rerank"
