"""An import plan: the items to import and the image files of each, plus what was
skipped and why; and the exclusion list that keeps placeholder images out of it."""

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

from photosearch_catalog.domain import ImageRole, ItemFields

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class PlannedImage:
    path: Path
    role: ImageRole = ImageRole.OFFICIAL


@dataclass
class PlannedItem:
    import_key: str
    fields: ItemFields
    images: list[PlannedImage] = field(default_factory=list)


@dataclass
class ImportPlan:
    items: list[PlannedItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    @property
    def image_count(self) -> int:
        return sum(len(item.images) for item in self.items)


class Exclusions:
    """Images to skip (placeholders): glob patterns matched against the path relative
    to the source and against the bare file name, or sha256 hashes of the bytes."""

    def __init__(self, patterns: list[str] | None = None, hashes: set[str] | None = None):
        self.patterns = [p.lower() for p in patterns or []]
        self.hashes = {h.lower() for h in hashes or set()}

    @classmethod
    def from_files(cls, files: list[Path]) -> "Exclusions":
        patterns: list[str] = []
        hashes: set[str] = set()
        for path in files:
            for raw in path.read_text(encoding="utf-8").splitlines():
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                (hashes.add if _HEX64.match(line) else patterns.append)(line)
        return cls(patterns, hashes)

    def excludes_path(self, relative: str) -> bool:
        relative = relative.replace("\\", "/").lower()
        name = relative.rsplit("/", 1)[-1]
        return any(
            fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(name, p) for p in self.patterns
        )

    def excludes_hash(self, sha256: str) -> bool:
        return sha256.lower() in self.hashes
