"""The named techniques of the ablation (docs/quality.md), one change at a time."""

from tools.quality.offline import Technique
from tools.quality.rerank import RerankSettings

CATALOG: dict[str, Technique] = {
    "global": Technique("global"),
    "mirror-index": Technique("mirror-index", index_variants=("mirror",)),
    "mnn": Technique("mnn", rerank=RerankSettings(top_k=50, verify=False)),
    "rerank": Technique("rerank", rerank=RerankSettings(top_k=50)),
}
RECOMMENDED = "rerank"
