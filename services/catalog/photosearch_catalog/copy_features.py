"""What the copy check (copy_check.py) keeps of each image beside its PDQ hashes, to catch
the copies PDQ's fixed views cannot: a photo turned by an odd angle and zoomed, or one
re-encoded, brightened or shrunk just past PDQ's match distance.

- a colour signature: the square root of a 4 x 4 x 4 RGB histogram of the central disc
  (a disc reads the same at any turn; the corners a turn fills are left out), unit length,
  so nearest neighbours by dot product are the Hellinger kernel's;
- ORB keypoints and descriptors (OpenCV) of the grey picture at 256 px on its long side,
  to align a turned or zoomed copy onto its original;
- a grey thumbnail, 64 px on its long side, to compare the aligned pixels.

All of it is computed from the picture PDQ hashes, in the same pass, and stored packed
with the hashes (about 14 KB)."""

import struct
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

KEYPOINTS = 256
FRAME_SIDE = 256  # keypoints are found at this size, small pictures scaled up to it
THUMB_SIDE = 64
COLOUR_LEVELS = 4  # per channel: 64 bins
DISC_RADIUS = 0.4  # of the shorter side
_HEADER = struct.Struct("<HHBBH")  # frame w, h; thumbnail w, h; keypoints
_COLOURS = COLOUR_LEVELS**3

cv2.setNumThreads(1)  # one picture at a time, inside a worker that shares the host


@dataclass(frozen=True)
class CopyFeatures:
    colour: npt.NDArray[np.float32]  # 64, unit length
    thumbnail: npt.NDArray[np.uint8]  # grey, h x w, long side 64
    frame: tuple[int, int]  # (w, h) of the picture the keypoints are in
    points: npt.NDArray[np.float32]  # k x 2 (x, y) in that frame
    descriptors: npt.NDArray[np.uint8]  # k x 32


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    w, h = size
    scale = side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def colour_signature(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    radius = DISC_RADIUS * min(h, w)
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= radius * radius
    levels = rgb[disc].astype(np.int64) * COLOUR_LEVELS // 256
    bins = (levels[:, 0] * COLOUR_LEVELS + levels[:, 1]) * COLOUR_LEVELS + levels[:, 2]
    counts = np.bincount(bins, minlength=_COLOURS).astype(np.float32)
    signature = np.sqrt(counts / max(1.0, float(counts.sum())))
    unit: npt.NDArray[np.float32] = signature / max(float(np.linalg.norm(signature)), 1e-12)
    return unit


def compute(picture: Image.Image) -> CopyFeatures:
    """The features of a decoded RGB picture (the one PDQ hashes)."""
    frame = picture.convert("L").resize(_fit(picture.size, FRAME_SIDE), Image.Resampling.BILINEAR)
    grey = np.asarray(frame)
    orb = cv2.ORB_create(nfeatures=KEYPOINTS)  # type: ignore[attr-defined]
    found, descriptors = orb.detectAndCompute(grey, None)
    if descriptors is None:  # a flat picture: nothing to align by
        points = np.zeros((0, 2), np.float32)
        descriptors = np.zeros((0, 32), np.uint8)
    else:
        points = np.asarray([k.pt for k in found], dtype=np.float32)
    thumbnail = frame.resize(_fit(frame.size, THUMB_SIDE), Image.Resampling.BOX)
    return CopyFeatures(
        colour_signature(np.asarray(picture.convert("RGB"))),
        np.asarray(thumbnail),
        frame.size,
        points[:KEYPOINTS],
        descriptors[:KEYPOINTS],
    )


def pack(f: CopyFeatures) -> bytes:
    th, tw = f.thumbnail.shape
    colour = np.round(f.colour * 255).astype(np.uint8)
    header = _HEADER.pack(f.frame[0], f.frame[1], tw, th, len(f.points))
    return b"".join(
        (
            header,
            colour.tobytes(),
            f.thumbnail.tobytes(),
            f.points.astype("<f4").tobytes(),
            f.descriptors.tobytes(),
        )
    )


def unpack(data: bytes) -> CopyFeatures:
    fw, fh, tw, th, k = _HEADER.unpack_from(data)
    at = _HEADER.size
    colour = np.frombuffer(data, np.uint8, _COLOURS, at).astype(np.float32)
    at += _COLOURS
    thumbnail = np.frombuffer(data, np.uint8, tw * th, at).reshape(th, tw)
    at += tw * th
    points = np.frombuffer(data, "<f4", 2 * k, at).reshape(k, 2).astype(np.float32)
    at += 8 * k
    descriptors = np.frombuffer(data, np.uint8, 32 * k, at).reshape(k, 32)
    if at + 32 * k != len(data):
        raise ValueError("copy features of the wrong length")
    return CopyFeatures(
        colour / max(float(np.linalg.norm(colour)), 1e-12), thumbnail, (fw, fh), points, descriptors
    )
