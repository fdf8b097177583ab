"""The query photo's local descriptors as the page sends them (JSON, base64 codes) and
as search takes them (`photosearch.events.v1.LocalDescriptors`).

The shape checks are the shared codec's (`photosearch.common.local.from_proto`), so the
gateway refuses exactly what search would, before calling it, with the view named."""

import base64
import binascii
import math
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from photosearch.common.errors import InvalidArgument
from photosearch.common.local import SALIENT_CELLS, from_proto
from photosearch.events.v1 import events_pb2
from photosearch_gateway.errors import ApiError

# The photo as taken and up to three turned views.
MAX_LOCAL_VIEWS = 4
# A 448-px long side gives 28 cells a side at stride 16 and 32 at DINOv2's 14.
MAX_LOCAL_SIDE = 40
MAX_LOCAL_DIM = 1024
# Bytes a search body may need beyond the fingerprint: MAX_LOCAL_VIEWS full grids of 64-d
# codes in base64 (a selection of cells is smaller; see config.max_search_bytes).
LOCAL_BODY_BYTES = MAX_LOCAL_VIEWS * 4 * math.ceil(MAX_LOCAL_SIDE**2 * 64 / 3)


class LocalView(BaseModel):
    """One view of the photo: an int8 code per cell of the model's local feature grid."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(ge=1, le=MAX_LOCAL_SIDE, description="Cells down the feature grid.")
    cols: int = Field(ge=1, le=MAX_LOCAL_SIDE, description="Cells across the feature grid.")
    dim: int = Field(ge=1, le=MAX_LOCAL_DIM, description="The model's local dimension.")
    codes: str = Field(
        description="Base64 of the int8 codes, cell after cell, `dim` bytes each: "
        "round(x * 127) of each cell's unit vector."
    )
    cells: list[Annotated[int, Field(ge=0, lt=MAX_LOCAL_SIDE**2)]] = Field(
        default_factory=list,
        max_length=MAX_LOCAL_SIDE**2,
        description="Row-major grid index of each coded cell, ascending, at most 250 (the "
        "most salient); empty = every cell.",
    )

    def to_proto(self, dim: int | None, what: str) -> events_pb2.LocalDescriptors:
        """The message search takes; 400 unless its codes, cells and dimension agree."""
        try:
            codes = base64.b64decode(self.codes, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid(what, f"{what}: codes are not valid base64 ({exc})") from None
        message = events_pb2.LocalDescriptors(
            rows=self.rows, cols=self.cols, dim=self.dim, codes=codes, cells=self.cells
        )
        try:
            from_proto(message, dim=dim, what=what)
        except InvalidArgument as exc:
            raise invalid(what, str(exc)) from None
        if len(self.cells) > SALIENT_CELLS:  # search matches no more cells than that
            raise invalid(
                what,
                f"{what}: a selection of cells may hold at most {SALIENT_CELLS} cells, got "
                f"{len(self.cells)}: send the full grid or its {SALIENT_CELLS} most salient cells",
            )
        return message


def invalid(what: str, message: str) -> ApiError:
    field = what.replace("[", ".").rstrip("]")
    return ApiError(
        400,
        "invalid_argument",
        message,
        details={"problems": [{"field": field, "problem": message}]},
    )


def local_dim(preprocess: dict[str, Any]) -> int | None:
    """The model's local dimension from preprocess.json (None: no local graph)."""
    section = preprocess.get("local")
    if not isinstance(section, dict):
        return None
    dim = section.get("dim")
    return int(dim) if isinstance(dim, int) and dim > 0 else None


def local_messages(views: list[LocalView], dim: int | None) -> list[events_pb2.LocalDescriptors]:
    return [view.to_proto(dim, f"local[{i}]") for i, view in enumerate(views)]
