"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, with the
network log on so a test can read every request the page made."""

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from selenium import webdriver

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=390,844",  # a phone-sized screen
]


def available() -> bool:
    return bool(shutil.which("chromium") and shutil.which("chromedriver"))


def fake_camera(video: Path) -> list[str]:
    """Flags for a camera that films `video` (a .y4m file, looped) and needs no consent."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]


def write_y4m(image: Image.Image, path: Path, frames: int = 10) -> Path:
    """A still photo as a short Y4M video (YUV 4:2:0, even sides), the fake camera's input."""
    w, h = image.width // 2 * 2, image.height // 2 * 2
    ycbcr = np.asarray(image.convert("RGB").resize((w, h)).convert("YCbCr"))
    y = ycbcr[:, :, 0].tobytes()
    chroma = [ycbcr[::2, ::2, c].tobytes() for c in (1, 2)]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + y + chroma[0] + chroma[1])
    return path


@contextmanager
def chromium(
    extra_flags: Sequence[str] = (), languages: str = "en-US,en"
) -> Iterator[webdriver.Chrome]:
    """`languages`: what the browser says its user reads (navigator.languages)."""
    profile = tempfile.mkdtemp(prefix="photosearch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    first = languages.split(",")[0]
    for flag in [*FLAGS, *extra_flags, f"--user-data-dir={profile}", f"--lang={first}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": languages})
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


def sent_requests(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Requests the page sent since the last call (from Chromium's network log)."""
    requests = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            request = message["params"]["request"]
            requests.append({**request, "requestId": message["params"]["requestId"]})
    return requests


def post_data(driver: webdriver.Chrome, request: dict[str, Any]) -> str:
    """The body a request sent (the log leaves out large bodies: ask Chromium for them)."""
    if "postData" in request:
        return str(request["postData"])
    reply = driver.execute_cdp_cmd(
        "Network.getRequestPostData", {"requestId": request["requestId"]}
    )
    return str(reply["postData"])
