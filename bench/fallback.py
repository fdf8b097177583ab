"""Fallback timings without network: photo preparation (reduced-scale JPEG decode vs a
full decode, interleaved), and WebDetect end to end through the real google-cloud-vision
client against the local fake Vision server.

Run from the repository root: make bench-fallback
"""

import asyncio
import io
import logging
import statistics
import time

import numpy as np
import structlog
from PIL import Image

from photosearch.common.images import decode_image
from photosearch_fallback.config import FallbackSettings
from photosearch_fallback.credentials import VisionCredentials
from photosearch_fallback.photo import prepare_photo
from photosearch_fallback.service import WebDetectService
from photosearch_fallback.vision import VisionWebDetector
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply

ROUNDS = 9


def camera_like(width: int, height: int) -> bytes:
    """A smooth gradient with sensor-like noise, saved as a camera would (quality 92)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    pixels = np.clip(base + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def summary(seconds: list[float]) -> str:
    return f"p50 {statistics.median(seconds) * 1000:.0f} ms (min {min(seconds) * 1000:.0f})"


class BenchCredentials:
    async def get(self) -> VisionCredentials:
        return VisionCredentials(True, "AIza-bench-key-0000")

    def invalidate(self) -> None:
        pass


def bench_preparation(name: str, data: bytes, s: FallbackSettings) -> None:
    reduced: list[float] = []
    full: list[float] = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        photo = prepare_photo(
            data,
            max_side=s.upload_max_side,
            max_upload_bytes=s.upload_max_bytes,
            quality=s.upload_jpeg_quality,
            max_bytes=s.max_photo_bytes,
            max_pixels=s.max_photo_pixels,
        )
        reduced.append(time.perf_counter() - started)
        started = time.perf_counter()
        image = decode_image(data).image
        image.thumbnail((s.upload_max_side, s.upload_max_side), Image.Resampling.LANCZOS)
        image.save(io.BytesIO(), "JPEG", quality=s.upload_jpeg_quality, optimize=True)
        full.append(time.perf_counter() - started)
    print(
        f"| prepare {name} | {len(data) / 1e6:.2f} MB -> {photo.width}x{photo.height}, "
        f"{len(photo.jpeg) / 1e3:.0f} kB | reduced-scale decode {summary(reduced)}; "
        f"full decode {summary(full)} |"
    )


async def bench_web_detect(photos: dict[str, bytes]) -> None:
    with FakeVision() as fake:
        fake.set_default(Reply.web_detection(RICH_WEB_DETECTION))
        settings = FallbackSettings(vision_endpoint=fake.endpoint)
        detector = VisionWebDetector(settings.vision_options())
        service = WebDetectService(settings, BenchCredentials(), detector)
        await service.web_detect(photos["1 MP"], 10)  # warm-up: client construction
        for name, data in photos.items():
            seconds = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                await service.web_detect(data, 10)
                seconds.append(time.perf_counter() - started)
            print(f"| web_detect {name} | fake Vision, 10 leads | {summary(seconds)} |")
        started = time.perf_counter()
        await asyncio.gather(*(service.web_detect(photos["1 MP"], 10) for _ in range(16)))
        elapsed = (time.perf_counter() - started) * 1000
        print(f"| 16 concurrent web_detect 1 MP | 4 Vision threads | {elapsed:.0f} ms in all |")
        detector.close()


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    photos = {"12 MP": camera_like(4000, 3000), "1 MP": camera_like(1200, 900)}
    settings = FallbackSettings()
    print("| what | input | time |\n|---|---|---|")
    for name, data in photos.items():
        bench_preparation(name, data, settings)
    asyncio.run(bench_web_detect(photos))


if __name__ == "__main__":
    main()
