"""The product in a real browser against the whole mesh (real processes): pick a photo,
the page fingerprints it on the device, sends only the vector (and the local descriptors
when the model has a local graph), and shows the right item; the page's fingerprints equal
the embedder service's; a photo whose view as taken verifies nothing is searched again with
its turned views; the web fallback pre-fills the manual entry; another origin's page that
imports the fingerprint module from its own paths finds the item too; the API docs load
from the gateway itself; the admin page shows the index and the workers, and a copy that
its perceptual hash found and one its pixel check found."""

import base64
import csv
import io
import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from PIL import Image
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from photosearch.common.local import SALIENT_CELLS, LocalGrid, from_proto
from photosearch.common.model_files import ModelFiles
from photosearch.embedder.v1 import embedder_pb2, embedder_pb2_grpc
from photosearch.events.v1 import events_pb2
from photosearch_devstack.mesh import Mesh
from tests.e2e import browser
from tests.e2e.local_reference import LocalReference, local_size
from tests.e2e.other_app import other_app
from tests.e2e.photos import COIL, LEGO, dvd_reference, varied_photos
from tests.integration.gateway.models import MODEL_ID, exported_model
from tests.support.copies import turned_and_zoomed
from tests.support.fake_vision import RICH_WEB_DETECTION, FakeVision, Reply
from tests.support.mesh_state import catalog_image_ids
from tests.support.object_store import PhotoServer
from tests.support.oidc_issuer import CLIENT_ID, LocalIssuer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not browser.available(), reason="needs chromium + chromedriver"),
]
VISION_KEY = "AIzaSy-browser-test-key-000111"
COVERS = 8


@pytest.fixture(scope="module")
def vision() -> Iterator[FakeVision]:
    with FakeVision(api_key=VISION_KEY) as fake:
        fake.set_default(Reply.web_detection(RICH_WEB_DETECTION))
        yield fake


@pytest.fixture(scope="module")
def model() -> ModelFiles:
    return exported_model()


@pytest.fixture(scope="module")
def app_origin() -> Iterator[str]:
    """Another web app's origin, which the gateway lets call it (GATEWAY_CORS_ORIGINS)."""
    with other_app() as origin:
        yield origin


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """The identity provider the page signs contributors in with."""
    with LocalIssuer(audience="photosearch-browser") as running:
        yield running


@pytest.fixture(scope="module")
def mesh(
    tmp_path_factory: pytest.TempPathFactory,
    model: ModelFiles,
    vision: FakeVision,
    app_origin: str,
    issuer: LocalIssuer,
):
    extra = {
        "EMBED_MODEL": str(model.directory),
        "EMBED_HEARTBEAT_INTERVAL_SECONDS": "1",
        # The default runtime choice, timed briefly (cached with the export afterwards).
        "EMBED_RUNTIME": "auto",
        "EMBED_RUNTIME_PROBE_SECONDS": "0.3",
        "GATEWAY_MODEL_DIR": str(model.directory.parent),
        "GATEWAY_SEARCH_RATE_PER_MINUTE": "0",
        "GATEWAY_CORS_ORIGINS": app_origin,
        "FALLBACK_VISION_ENDPOINT": vision.endpoint,
        # The import test's photo server is on loopback.
        "CATALOG_IMPORT_ALLOW_PRIVATE_URLS": "true",
        "GATEWAY_OIDC_ISSUER": issuer.url,
        "GATEWAY_OIDC_AUDIENCE": "photosearch-browser",
        "GATEWAY_OIDC_CLIENT_ID": CLIENT_ID,
    }
    with Mesh(tmp_path_factory.mktemp("browser") / "data", extra_env=extra) as running:
        yield running


@pytest.fixture(scope="module")
def catalog(mesh: Mesh) -> dict[int, str]:
    """Photo search on, eight DVD covers entered through the API and embedded."""
    admin = mesh.admin_auth
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth) as http:
        on = {
            "photo_search_enabled": True,
            "web_fallback_enabled": True,
            "vision_api_key": VISION_KEY,
        }
        assert http.put("/api/v1/admin/settings", headers=admin, json=on).status_code == 200
        ids = {}
        for number in range(1, COVERS + 1):
            item = http.post("/api/v1/items", json={"name": f"Cover {number:03d}"}).json()
            path = dvd_reference(number)
            photo = {"photo": (path.name, path.read_bytes(), "image/jpeg")}
            assert http.post(f"/api/v1/items/{item['id']}/images", files=photo).status_code == 201
            ids[number] = item["id"]

        def embedded() -> bool:
            status = http.get("/api/v1/admin/index", headers=admin).json()
            return status["embedded"] == COVERS and status["pending"] == 0

        browser.wait_for(embedded, timeout=120, what="the covers to be embedded")
    return ids


def open_page(driver, mesh: Mesh) -> None:
    driver.get(mesh.gateway_url + "/")
    browser.wait_for(
        lambda: driver.execute_script("return document.body.dataset.ready"), what="the page"
    )


def open_admin(driver, mesh: Mesh) -> None:
    """The admin page, signed in with the dev stack's token, once it has loaded."""
    driver.get(mesh.gateway_url + "/admin")
    browser.wait_for(
        lambda: driver.execute_script("return document.body.dataset.language"), what="words"
    )
    driver.find_element(By.ID, "token").send_keys(mesh.secrets["admin_token"])
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
    browser.wait_for(
        lambda: driver.execute_script("return document.body.dataset.loaded"), what="admin"
    )


def pick(driver, path: Path, searches: int) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))

    def done() -> bool:
        error = driver.execute_script("return document.body.dataset.searchError")
        assert not error, error
        return driver.execute_script("return document.body.dataset.searches") == str(searches)

    browser.wait_for(done, timeout=90, what=f"the search for {path.name}")


def turned_copy(tmp_path: Path, number: int) -> Path:
    """The same cover photographed again: turned a little, smaller, re-encoded."""
    image = Image.open(dvd_reference(number)).convert("RGB")
    image = image.rotate(5, fillcolor=(240, 240, 240)).resize((420, 420))
    path = tmp_path / f"photo_of_cover_{number}.jpg"
    image.save(path, "JPEG", quality=82)
    return path


def test_a_photo_finds_its_item_and_only_the_vector_leaves_the_page(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles, tmp_path: Path
) -> None:
    with browser.chromium() as driver:
        open_page(driver, mesh)
        assert driver.find_element(By.ID, "add-manually").is_displayed()
        assert driver.execute_script("return self.crossOriginIsolated") is True
        browser.sent_requests(driver)  # forget the page load
        pick(driver, turned_copy(tmp_path, 5), searches=1)
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[5]
        assert "Cover 005" in first.text
        assert driver.find_element(By.ID, "add-manually").is_displayed()
        # The answer's band is shown; the list is in the order of the one score it shows.
        band = driver.find_element(By.ID, "band")
        shown_band = driver.execute_script("return window.photosearch.lastResult.band")
        assert band.get_attribute("data-band") == shown_band
        scores = [
            float(s.text) for s in driver.find_elements(By.CSS_SELECTOR, "#candidates .score")
        ]
        assert scores == sorted(scores, reverse=True)
        fits = "return document.documentElement.scrollWidth <= window.innerWidth"
        assert driver.execute_script(fits), "the page scrolls sideways on a phone-sized screen"
        requests = browser.sent_requests(driver)
        searches = [r for r in requests if r["url"].endswith("/api/v1/search")]
        # With regions to compare, the fingerprint's answer goes first, then the re-ranked one.
        sent_bodies = [browser.post_data(driver, r) for r in searches]
        answer = driver.execute_script("return window.photosearch.lastResult")
        timings = driver.execute_script("return window.photosearch.timings")
        assert not driver.find_element(By.ID, "turned-status").is_displayed()
        # The details panel: the device's stages, then the gateway's Server-Timing.
        panel = driver.find_element(By.ID, "timings")
        assert panel.get_attribute("hidden") is None
        stages = [
            row.get_attribute("data-stage")
            for row in panel.find_elements(By.CSS_SELECTOR, "tbody tr")
        ]
        runtime_row = panel.find_element(
            By.CSS_SELECTOR, 'tr[data-stage="runtime"] td'
        ).get_attribute("textContent")
        # This browser has no WebGPU adapter (--disable-gpu): the models ran in wasm.
        backend = driver.execute_script("return window.photosearch.backend")
        threads = driver.execute_script(
            "return window.photosearch.state.fingerprinter.runtime.threads"
        )
        # The next visit runs the model from Cache Storage: it is not downloaded again.
        open_page(driver, mesh)
        browser.sent_requests(driver)
        pick(driver, turned_copy(tmp_path, 6), searches=1)
        again = browser.sent_requests(driver)
        assert not [r for r in again if "/models/" in r["url"]]
        assert "cache" in driver.find_element(By.ID, "progress-text").get_attribute("textContent")
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[6]
        # Confirming it, the user may add the photo to the item (an explicit upload), which
        # needs a contributor: refused and asked to sign in, then added.
        first.find_element(By.TAG_NAME, "button").click()
        assert "Cover 006" in driver.find_element(By.ID, "confirmed-text").text
        images_before = len(catalog_image_ids(mesh))
        driver.find_element(By.ID, "add-photo").click()
        result = driver.find_element(By.ID, "add-photo-result")
        browser.wait_for(lambda: result.text, what="the refusal")
        assert result.text.startswith("Not added: writing needs the contributor token")
        assert "Sign in below" in result.text
        assert driver.find_element(By.ID, "contributor").is_displayed()
        assert len(catalog_image_ids(mesh)) == images_before
        driver.find_element(By.ID, "contributor-token").send_keys(mesh.secrets["contributor_token"])
        driver.find_element(By.CSS_SELECTOR, "#contributor-form button[type=submit]").click()
        assert driver.find_element(By.ID, "contributor-signed-in").is_displayed()
        driver.find_element(By.ID, "add-photo").click()
        browser.wait_for(lambda: "review" in result.text, what="the photo upload")
        assert result.text == "Thanks: your photo waits for an admin's review."
        assert len(catalog_image_ids(mesh)) == images_before + 1
    has_local = "local" in model.preprocess()
    assert len(searches) == (2 if has_local else 1)
    search = searches[-1]
    assert all(r["method"] == "POST" for r in searches)
    headers = {k.lower(): v for k, v in search["headers"].items()}
    assert headers["content-type"] == "application/json"
    body = json.loads(sent_bodies[-1])
    if has_local:  # the first: the fingerprint alone, the same vector
        assert json.loads(sent_bodies[0]) == {k: body[k] for k in ("model_id", "vector", "k")}
    assert set(body) == {"model_id", "vector", "k"} | ({"local"} if has_local else set())
    # An upright photo verifies with the view as taken: the turned views are never computed.
    assert len(body.get("local", [])) == (1 if has_local else 0)
    assert not answer["turned_views_wanted"] and answer["candidates"][0]["verified"] == has_local
    # A cover photographed again, verified far above the others: a match.
    assert answer["band"] == ("match" if has_local else answer["band"])
    assert timings["turned_views"] is False
    if has_local:  # the fingerprint's candidates were on screen before the regions' answer
        assert (
            timings["provisional"] and timings["final_results_ms"] > timings["first_results_ms"] > 0
        )
    else:
        assert timings["final_results_ms"] == timings["first_results_ms"] > 0
    assert len(timings.get("local_ms", [])) == len(body.get("local", []))
    # The region index's steps are timed only once its codebook is trained.
    steps = ("region_words", "region_query")
    server = [stage for stage, ms in timings["server"] if ms >= 0 and stage not in steps]
    local_stages = ["region_index", "descriptors", "rerank"] if has_local else []
    assert server == ["candidates", *local_stages, "names", "search"]
    assert stages[:3] == ["model", "runtime", "fingerprint"]
    assert backend == {"backend": "wasm", "adapter": None, "reason": "no WebGPU adapter"}
    plural = "thread" if threads == 1 else "threads"
    assert runtime_row == f"WebAssembly on the CPU, {threads} {plural}", runtime_row
    assert "names" in stages and stages[-1] == "page"
    assert body["model_id"] == MODEL_ID and len(body["vector"]) == 1280
    assert all(isinstance(v, float | int) for v in body["vector"])
    # No request of the photo search carried the photo: nothing but the JSON fingerprint and,
    # when the model has a local graph, int8 codes of exactly rows x cols cells per view.
    uploads = [r for r in requests if r.get("hasPostData") and r not in searches]
    assert uploads == []
    descriptors = 0
    for view in body.get("local", []):
        assert set(view) <= {"rows", "cols", "dim", "codes", "cells"}
        cells = len(view.get("cells", [])) or view["rows"] * view["cols"]
        assert len(base64.b64decode(view["codes"])) == cells * view["dim"]
        descriptors += len(view["codes"]) + len(json.dumps(view.get("cells", [])))
    assert len(sent_bodies[-1]) < 40_000 + descriptors


def test_a_live_scan_recognises_the_item_stops_by_itself_and_sends_only_vectors(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    """A fake rear camera films a cover held slightly turned: the scan searches frames,
    stops once the same item held the "match" band, and one tap confirms it."""
    held = Image.open(turned_copy(tmp_path, 3))
    frame = Image.new("RGB", (640, 480), (200, 200, 200))
    frame.paste(held.resize((400, 400)), (120, 40))
    camera = browser.write_y4m(frame, tmp_path / "camera.y4m")
    with browser.chromium(browser.fake_camera(camera)) as driver:
        open_page(driver, mesh)
        browser.sent_requests(driver)  # forget the page load
        driver.find_element(By.ID, "scan-start").click()

        def matched() -> bool:
            state = driver.execute_script("return document.body.dataset.scanState")
            assert state not in ("unavailable", "stopped"), driver.find_element(
                By.ID, "status"
            ).text
            return state == "matched"

        browser.wait_for(matched, timeout=120, what="the scan to settle on a match")
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[3]
        assert driver.find_element(By.ID, "band").get_attribute("data-band") == "match"
        assert 'Found: Cover 003. Tap "This one"' in driver.find_element(By.ID, "status").text
        scan = driver.execute_script("return window.photosearch.scan")
        assert scan["stats"]["searched"] >= 3 and len(scan["frame_ms"]) >= 3, scan
        assert (
            driver.execute_script("return document.getElementById('scan-video').srcObject") is None
        )
        assert not driver.find_element(By.ID, "scan").is_displayed()
        requests = browser.sent_requests(driver)
        first.find_element(By.TAG_NAME, "button").click()
        assert "Cover 003" in driver.find_element(By.ID, "confirmed-text").text
    # Frames never left the page: every request with a body was a JSON search.
    posted = [r for r in requests if r.get("hasPostData") or r["method"] != "GET"]
    assert len(posted) >= 3 and all(r["url"].endswith("/api/v1/search") for r in posted)
    assert all(
        {k.lower(): v for k, v in r["headers"].items()}["content-type"] == "application/json"
        for r in posted
    )


def test_without_a_camera_the_scan_says_so_and_photos_still_work(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    with browser.chromium() as driver:  # headless, no camera at all
        open_page(driver, mesh)
        driver.find_element(By.ID, "scan-start").click()
        browser.wait_for(
            lambda: (
                driver.execute_script("return document.body.dataset.scanState") == "unavailable"
            ),
            what="the scan to give up",
        )
        assert "take or choose a photo instead" in driver.find_element(By.ID, "status").text
        assert driver.find_element(By.ID, "pickers").is_displayed()
        pick(driver, turned_copy(tmp_path, 7), searches=1)
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[7]


def test_my_collection_is_kept_on_the_device_across_reloads_and_exports_as_csv(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    def rows(driver) -> dict[str, str] | None:
        """The listed items and counts; None while the table is being redrawn."""
        table = driver.find_elements(By.CSS_SELECTOR, "#collection-table tbody tr")
        try:
            return {
                r.get_attribute("data-item-id"): r.find_element(By.CLASS_NAME, "count").text
                for r in table
            }
        except StaleElementReferenceException:  # a row replaced between find and read
            return None

    with browser.chromium() as driver:
        open_page(driver, mesh)
        assert driver.find_element(By.ID, "collection-empty").is_displayed()
        browser.sent_requests(driver)
        pick(driver, turned_copy(tmp_path, 7), searches=1)
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[7]
        first.find_element(By.TAG_NAME, "button").click()
        for _ in range(2):
            driver.find_element(By.ID, "collect").click()
            browser.wait_for(
                lambda: driver.find_element(By.ID, "collect-result").text, what="collecting"
            )
        browser.wait_for(lambda: rows(driver) == {catalog[7]: "2"}, what="two copies listed")
        collecting = browser.sent_requests(driver)
        # Kept on the device: nothing about the collection went to the server.
        assert not [r for r in collecting if r.get("hasPostData") and "/search" not in r["url"]]

        open_page(driver, mesh)  # a reload: still there
        browser.wait_for(lambda: rows(driver) == {catalog[7]: "2"}, what="the collection")
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-item-id="{catalog[7]}"]')
        row.find_element(By.CLASS_NAME, "more").click()
        browser.wait_for(lambda: rows(driver) == {catalog[7]: "3"}, what="one more")
        driver.find_element(By.ID, "collection-export").click()
        link = driver.find_element(By.ID, "collection-download")
        browser.wait_for(lambda: link.get_attribute("href"), what="the export")
        href = link.get_attribute("href")
        prefix = "data:text/csv;charset=utf-8,"
        assert href.startswith(prefix)
        exported = list(csv.reader(io.StringIO(urllib.parse.unquote(href[len(prefix) :]))))
        assert exported[0] == ["name", "series", "maker", "year", "variant", "count", "id"]
        assert len(exported) == 2 and exported[1][-2:] == ["3", catalog[7]]
        assert exported[1][0] == "Cover 007"
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-item-id="{catalog[7]}"]')
        row.find_element(By.CLASS_NAME, "remove").click()
        browser.wait_for(lambda: rows(driver) == {}, what="the removal")
        assert driver.find_element(By.ID, "collection-empty").is_displayed()


def embed_on_server(mesh: Mesh, data: bytes) -> np.ndarray:
    with grpc.insecure_channel(mesh.address("embedder")) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        reply = stub.Embed(embedder_pb2.EmbedRequest(image=data), timeout=60)
    assert reply.model_id == MODEL_ID
    return np.asarray(reply.embeddings[0].values, dtype=np.float64)


def test_browser_fingerprints_equal_the_embedders(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    photos = varied_photos(tmp_path / "photos")
    assert len(photos) >= 10
    cosines = {}
    with browser.chromium() as driver:
        open_page(driver, mesh)
        for number, path in enumerate(photos, start=1):
            pick(driver, path, searches=number)
            page = np.asarray(driver.execute_script("return window.photosearch.lastFingerprint"))
            server = embed_on_server(mesh, path.read_bytes())
            cosine = page @ server / np.linalg.norm(page) / np.linalg.norm(server)
            cosines[f"{path.parent.name}/{path.name}"] = round(float(cosine), 6)
    print("browser vs embedder cosine:", json.dumps(cosines, indent=1))
    assert min(cosines.values()) >= 0.99, cosines


def test_search_the_web_prefills_the_manual_entry(mesh: Mesh, catalog: dict[int, str]) -> None:
    with browser.chromium() as driver:
        open_page(driver, mesh)
        pick(driver, dvd_reference(2), searches=1)
        button = driver.find_element(By.ID, "web-search")
        assert button.is_displayed()
        assert "sends your photo to Google" in driver.find_element(By.ID, "web").text
        button.click()
        name = driver.find_element(By.CSS_SELECTOR, "#manual-form input[name=name]")
        browser.wait_for(lambda: name.get_attribute("value"), what="the best guess")
        assert name.get_attribute("value") == "boba fett kenner 1979"
        assert "Boba Fett" in driver.find_element(By.ID, "web-leads").text


# --- local descriptors ------------------------------------------------------------------------


def needs_local(model: ModelFiles) -> LocalReference:
    assert "local" in model.preprocess(), f"{MODEL_ID} was exported without a local graph"
    return LocalReference(model)


def oblong_copy(tmp_path: Path, number: int) -> Path:
    """A landscape photo of a cover, so the turned views have other grid shapes."""
    image = Image.open(dvd_reference(number)).convert("RGB").resize((600, 430))
    path = tmp_path / f"oblong_{number}.jpg"
    image.save(path, "JPEG", quality=85)
    return path


RUN_LOCAL_GRAPH = """
const [tensorBase64, dims, done] = arguments;
(async () => {
  const config = await (await fetch("/api/v1/config")).json();
  const ort = await import(`${config.ort_base_url}ort.wasm.min.mjs`);
  const { createRuntime, RegionDescriber } = await import("/static/fingerprint/index.js");
  const runtime = createRuntime(ort, { wasmPaths: config.ort_base_url });
  const describer = await RegionDescriber.load(config.model, { runtime });
  const bytes = Uint8Array.from(atob(tensorBase64), (c) => c.charCodeAt(0));
  const tensor = runtime.tensor(new Float32Array(bytes.buffer), dims);
  const outputs = await describer.session.run({ [describer.local.input_name]: tensor });
  const out = outputs[describer.local.output_name];
  const { base64 } = await import("/static/fingerprint/codes.js");
  done({ dims: out.dims, data: base64(out.data) });
})().catch((error) => done({ error: String(error) }));
"""


def unknown_object(tmp_path: Path) -> Path:
    """A landscape photo of something not in the catalog (a COIL-100 object): its view as
    taken verifies no cover, so search asks for the turned views."""
    image = Image.open(COIL / "obj002__000.png").convert("RGB").resize((600, 430))
    path = tmp_path / "unknown_object.jpg"
    image.save(path, "JPEG", quality=85)
    return path


def test_a_photo_of_something_not_in_the_catalog_says_no_good_match(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles, tmp_path: Path
) -> None:
    """A LEGO figure against a catalog of DVD covers: the page says there is no good
    match, no candidate carries the verified badge, and adding the item by hand comes
    first."""
    needs_local(model)
    figure = sorted(LEGO.rglob("*.jpg"))[0]
    with browser.chromium() as driver:
        open_page(driver, mesh)
        pick(driver, figure, searches=1)
        result = driver.execute_script("return window.photosearch.lastResult")
        assert result["band"] == "no_match", result
        band = driver.find_element(By.ID, "band")
        assert band.get_attribute("data-band") == "no_match"
        assert "No good match" in band.text
        assert driver.find_elements(By.CSS_SELECTOR, "#candidates .verified") == []
        order = driver.execute_script(
            "return [...document.querySelectorAll('main > section')].map((s) => s.id)"
        )
        assert order.index("manual") < order.index("results")
        driver.find_element(By.ID, "band-add").click()
        assert driver.find_element(By.ID, "manual-form").is_displayed()
        # A photo of a cover again: the band and the order go back.
        pick(driver, turned_copy(tmp_path, 2), searches=2)
        assert band.get_attribute("data-band") == "match"
        order = driver.execute_script(
            "return [...document.querySelectorAll('main > section')].map((s) => s.id)"
        )
        assert order.index("results") < order.index("manual")


def test_a_photo_that_verifies_nothing_is_searched_again_with_its_turned_views(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles, tmp_path: Path
) -> None:
    """The photo as taken verifies no candidate, search says turned_views_wanted: the page
    shows that answer, computes the views turned 90 and 270 degrees, searches again with
    all three (the same first view) and shows the new answer instead."""
    reference = needs_local(model)
    photo = unknown_object(tmp_path)
    with browser.chromium() as driver:
        open_page(driver, mesh)
        browser.sent_requests(driver)
        pick(driver, photo, searches=1)
        searches = [r for r in browser.sent_requests(driver) if r["url"].endswith("/api/v1/search")]
        # The fingerprint alone, the photo as taken, then all three views.
        alone, first_body, body = (json.loads(browser.post_data(driver, r)) for r in searches)
        assert "local" not in alone
        result = driver.execute_script("return window.photosearch.lastResult")
        timings = driver.execute_script("return window.photosearch.timings")
        shown = driver.find_elements(By.CSS_SELECTOR, "#candidates li")
        assert not driver.execute_script("return document.body.dataset.localError")
        assert not driver.find_element(By.ID, "turned-status").is_displayed()
        # The page shows the second answer: search re-ranked with all three views.
        assert result["reranked"] is True and result["turned_views_wanted"] is False
        assert [li.get_attribute("data-item-id") for li in shown] == [
            c["item"]["id"] for c in result["candidates"]
        ]
        assert [li.get_attribute("data-inliers") for li in shown] == [
            str(c["inliers"]) for c in result["candidates"]
        ]
        badges = driver.find_elements(By.CSS_SELECTOR, "#candidates .verified")
        assert len(badges) == sum(c["verified"] for c in result["candidates"])
    # The first request: the view as taken alone; the second: the same view, then the turns.
    assert len(first_body["local"]) == 1 and len(body["local"]) == 3
    assert body["local"][0] == first_body["local"][0]
    assert {k: v for k, v in body.items() if k != "local"} == {
        k: v for k, v in first_body.items() if k != "local"
    }
    # As taken (landscape) and turned 90 and 270 degrees (portrait): the grid of each view.
    width, height = local_size(600, 430, reference.local)
    stride = width // reference.run(np.zeros((1, 3, height, width), np.float32)).shape[3]
    landscape = {"rows": height // stride, "cols": width // stride}
    portrait = {"rows": width // stride, "cols": height // stride}
    dim = reference.local["dim"]
    shapes = [{k: v[k] for k in ("rows", "cols", "dim")} for v in body["local"]]
    wide, tall = {**landscape, "dim": dim}, {**portrait, "dim": dim}
    assert shapes == [wide, tall, tall]
    # Of each view's cells, only the most salient travel (what search keeps anyway).
    for view in body["local"]:
        assert len(view["cells"]) == SALIENT_CELLS < view["rows"] * view["cols"]
        assert len(base64.b64decode(view["codes"])) == SALIENT_CELLS * dim
    assert len(timings["local_ms"]) == 3 and timings["fingerprint_ms"] > 0
    assert timings["turned_views"] is True
    assert timings["final_results_ms"] > timings["first_results_ms"] > 0


def test_browser_local_graph_equals_python_onnxruntime(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles
) -> None:
    """The same input tensor through onnxruntime-web (wasm) and Python's onnxruntime."""
    reference = needs_local(model)
    rng = np.random.default_rng(7)
    with browser.chromium() as driver:
        open_page(driver, mesh)
        driver.set_script_timeout(120)
        for height, width in ((320, 448), (448, 224)):
            tensor = rng.normal(0, 1, (1, 3, height, width)).astype(np.float32)
            reply = driver.execute_async_script(
                RUN_LOCAL_GRAPH, base64.b64encode(tensor.tobytes()).decode(), tensor.shape
            )
            assert "error" not in reply, reply
            want = reference.run(tensor)
            got = np.frombuffer(base64.b64decode(reply["data"]), np.float32)
            assert tuple(reply["dims"]) == want.shape
            assert np.abs(got.reshape(want.shape) - want).max() < 1e-4


def local_on_server(mesh: Mesh, data: bytes) -> list[LocalGrid]:
    """The embedder service's local descriptors of the photo at the page's turns (its
    most salient cells of each view)."""
    with grpc.insecure_channel(mesh.address("embedder")) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        request = embedder_pb2.EmbedRequest(image=data, local_rotations=[0, 90, 270])
        reply = stub.Embed(request, timeout=120)
    return [from_proto(message) for message in reply.local]


def median_cell_cosine(view: dict[str, Any], grid: LocalGrid) -> float:
    """Median cosine between the page's cells and the same cells of `grid` (those both
    have: the page and the embedder each send their most salient cells)."""
    assert (view["rows"], view["cols"], view["dim"]) == (grid.rows, grid.cols, grid.dim)
    page = from_proto(
        events_pb2.LocalDescriptors(
            rows=view["rows"],
            cols=view["cols"],
            dim=view["dim"],
            codes=base64.b64decode(view["codes"]),
            cells=view.get("cells", []),
        )
    )
    common, mine, theirs = np.intersect1d(page.index, grid.index, return_indices=True)
    assert len(common) >= 0.9 * min(len(page), len(grid)), "other cells were chosen"
    a = page.codes[mine].astype(np.float64)
    b = grid.codes[theirs].astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(np.median(cos))


def test_browser_local_descriptors_equal_the_reference_and_the_embedders(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles, tmp_path: Path
) -> None:
    """Decode, turn, resize and quantise in the page against Pillow + onnxruntime and
    against the embedder service: every view has the same grid and the same cells
    (cosine of the int8 codes)."""
    reference = needs_local(model)
    chosen = ("exif_orientation_6.jpg", "alpha.png", "panorama.png", "large_12mp.jpg")
    photos = [dvd_reference(1)] + [p for p in varied_photos(tmp_path) if p.name in chosen]
    photos.append(unknown_object(tmp_path))  # its turned views are computed too
    turned = 0
    worst: dict[str, dict[str, float]] = {"reference": {}, "embedder": {}}
    with browser.chromium() as driver:
        open_page(driver, mesh)
        for number, path in enumerate(photos, start=1):
            pick(driver, path, searches=number)
            sent = driver.execute_script("return window.photosearch.lastQuery.local")
            assert len(sent) in (1, 3), "the view as taken, then both turned views if asked"
            turned += len(sent) == 3
            data = path.read_bytes()
            for name, all_grids in (
                ("reference", reference.views(data)),
                ("embedder", local_on_server(mesh, data)),
            ):
                assert len(all_grids) == 3
                grids = all_grids[: len(sent)]
                cosines = [median_cell_cosine(v, g) for v, g in zip(sent, grids, strict=True)]
                worst[name][path.name] = round(min(cosines), 4)
    print("browser local cells, median cosine per photo (worst view):", json.dumps(worst))
    assert turned >= 1, "no photo had its turned views computed"
    assert min(worst["reference"].values()) >= 0.98, worst
    assert min(worst["embedder"].values()) >= 0.98, worst


# SwiftShader's WebGPU adapter, which runs on the CPU: what this machine has.
SOFTWARE_WEBGPU = ["--enable-unsafe-webgpu"]


def test_on_a_software_webgpu_adapter_the_page_stays_on_wasm(
    mesh: Mesh, catalog: dict[int, str]
) -> None:
    with browser.chromium(SOFTWARE_WEBGPU) as driver:
        open_page(driver, mesh)
        pick(driver, dvd_reference(3), searches=1)
        backend = driver.execute_script("return window.photosearch.backend")
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[3]
    assert backend["backend"] == "wasm" and "swiftshader" in backend["adapter"], backend
    assert backend["reason"] == f"the WebGPU adapter ({backend['adapter']}) runs on the CPU"


def test_in_webgpu_the_page_sends_what_it_sends_in_wasm_and_finds_the_item(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    """The page asked for WebGPU (on SwiftShader, the adapter here): the fingerprint and the
    regions equal the embedder's, as in wasm, and the details say where the models ran."""
    photo = turned_copy(tmp_path, 4)
    with browser.chromium(SOFTWARE_WEBGPU) as driver:
        open_page(driver, mesh)
        driver.execute_script("window.photosearch.options.backend = 'webgpu'")
        pick(driver, photo, searches=1)
        backend = driver.execute_script("return window.photosearch.backend")
        sent = driver.execute_script("return window.photosearch.lastQuery")
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        item = first.get_attribute("data-item-id")
        panel = driver.find_element(By.ID, "timings")
        runtime_row = panel.find_element(
            By.CSS_SELECTOR, 'tr[data-stage="runtime"] td'
        ).get_attribute("textContent")
    assert backend["backend"] == "webgpu" and backend["reason"] == "asked for", backend
    assert runtime_row == f"WebGPU ({backend['adapter']})"
    assert item == catalog[4]
    page = np.asarray(sent["vector"], dtype=np.float64)
    server = embed_on_server(mesh, photo.read_bytes())
    assert page @ server / np.linalg.norm(page) / np.linalg.norm(server) >= 0.99
    assert sent["local"], "the regions were computed in WebGPU too"
    grids = local_on_server(mesh, photo.read_bytes())
    cosines = [median_cell_cosine(v, g) for v, g in zip(sent["local"], grids, strict=False)]
    assert min(cosines) >= 0.98, cosines


# Every WebGPU device request fails, as on a GPU whose driver is blocklisted or lost.
BREAK_WEBGPU_DEVICES = """
GPUAdapter.prototype.requestDevice = () => Promise.reject(new Error("no device for this page"));
Object.assign(window.photosearch.options, { backend: "webgpu", workerInference: false });
"""
# The page finds an adapter, onnxruntime-web (asking after it, on the page's thread) none.
LOSE_THE_ADAPTER_AFTER_THE_CHOICE = """
const request = navigator.gpu.requestAdapter.bind(navigator.gpu);
let calls = 0;
navigator.gpu.requestAdapter = (options) =>
  calls++ === 0 ? request(options) : Promise.resolve(null);
Object.assign(window.photosearch.options, { backend: "webgpu", workerInference: false });
"""


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        (BREAK_WEBGPU_DEVICES, "gave no device (no device for this page)"),
        (LOSE_THE_ADAPTER_AFTER_THE_CHOICE, "WebGPU failed: "),
    ],
    ids=["no device", "session refused"],
)
def test_a_webgpu_that_cannot_run_the_models_leaves_the_page_on_wasm(
    mesh: Mesh, catalog: dict[int, str], breakage: str, reason: str
) -> None:
    """The models run on the page's thread here, so what is broken is what onnxruntime-web
    sees: refused before the choice (no device) or when it opens the first model."""
    with browser.chromium(SOFTWARE_WEBGPU) as driver:
        open_page(driver, mesh)
        driver.execute_script(breakage)
        pick(driver, dvd_reference(5), searches=1)
        backend = driver.execute_script("return window.photosearch.backend")
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[5]
        runtime = driver.execute_script(
            "return window.photosearch.state.fingerprinter.runtime.backend"
        )
        sent = driver.execute_script("return window.photosearch.lastQuery")
    assert backend["backend"] == runtime == "wasm", backend
    assert reason in backend["reason"], backend
    assert sent["local"], "the regions were computed in wasm too"


def test_without_the_local_graph_the_page_searches_with_the_fingerprint_alone(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles, tmp_path: Path
) -> None:
    """local.onnx cannot be downloaded: the search still runs, without `local`, and the page
    says quietly that only the fingerprint was used."""
    needs_local(model)
    with browser.chromium() as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/local.onnx*"]})
        open_page(driver, mesh)
        browser.sent_requests(driver)
        pick(driver, turned_copy(tmp_path, 3), searches=1)
        (search,) = [
            r for r in browser.sent_requests(driver) if r["url"].endswith("/api/v1/search")
        ]
        body = json.loads(browser.post_data(driver, search))
        assert set(body) == {"model_id", "vector", "k"}
        assert driver.execute_script("return document.body.dataset.localError")
        note = driver.find_element(By.ID, "search-note")
        assert note.is_displayed() and "fingerprint only" in note.text
        first = driver.find_element(By.CSS_SELECTOR, "#candidates li")
        assert first.get_attribute("data-item-id") == catalog[3]
        assert not first.find_elements(By.CLASS_NAME, "verified")


# --- the fingerprint module in another app ---------------------------------------------------

# What another app's page does with the module (its README's example): onnxruntime-web and
# @photosearch/fingerprint from the app's own paths, the model from the gateway.
OTHER_APP_SEARCH = """
const [gateway, photoBase64, done] = arguments;
(async () => {
  const ort = await import("/lib/onnxruntime-web/ort.wasm.min.mjs");
  const { wasm } = ort.env;
  const env = () => ({ paths: wasm.wasmPaths ?? null, threads: wasm.numThreads ?? null });
  const before = env();
  const fp = await import("/lib/fingerprint/index.js");
  const imported = env();
  const runtime = fp.createRuntime(ort, { wasmPaths: "/lib/onnxruntime-web/" });
  const config = await (await fetch(`${gateway}/api/v1/config`)).json();
  const options = { runtime, baseUrl: gateway };
  const fingerprinter = await fp.Fingerprinter.load(config.model, options);
  const bytes = Uint8Array.from(atob(photoBase64), (c) => c.charCodeAt(0));
  const photo = await fingerprinter.decode(new Blob([bytes], { type: "image/jpeg" }));
  const vector = await fingerprinter.fingerprint(photo);
  const describer = await fp.RegionDescriber.load(config.model, options);
  const { views } = await describer.describe(photo, () => {}, fp.AS_TAKEN);
  const query = { model_id: config.model.model_id, vector, k: 5, local: views };
  const reply = await fetch(`${gateway}/api/v1/search`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(query),
  });
  done({
    before, imported, configured: env(), isolated: self.crossOriginIsolated,
    cores: navigator.hardwareConcurrency, vector, status: reply.status, answer: await reply.json(),
  });
})().catch((error) => done({ error: String(error) }));
"""


def test_another_origin_imports_the_module_from_its_own_paths_and_finds_the_item(
    mesh: Mesh, catalog: dict[int, str], model: ModelFiles, app_origin: str, tmp_path: Path
) -> None:
    """The module works from any path (relative imports), leaves onnxruntime-web alone until
    createRuntime, and with the wasm path and the gateway's address handed in fingerprints
    a photo as the embedder does and finds its item, the page cross-origin isolated."""
    needs_local(model)
    photo = turned_copy(tmp_path, 4)
    with browser.chromium() as driver:
        driver.get(app_origin + "/")
        driver.set_script_timeout(120)
        browser.sent_requests(driver)
        photo_base64 = base64.b64encode(photo.read_bytes()).decode()
        reply = driver.execute_async_script(OTHER_APP_SEARCH, mesh.gateway_url, photo_base64)
        requests = [r["url"] for r in browser.sent_requests(driver)]
        console = driver.get_log("browser")
    assert "error" not in reply, reply
    assert reply["imported"] == reply["before"]  # importing the module set nothing
    threads = min(4, reply["cores"])
    assert reply["configured"] == {"paths": "/lib/onnxruntime-web/", "threads": threads}
    assert reply["isolated"] is True
    assert reply["status"] == 200, reply["answer"]
    first = reply["answer"]["candidates"][0]
    assert first["item"]["id"] == catalog[4] and first["verified"]
    page = np.asarray(reply["vector"])
    server = embed_on_server(mesh, photo.read_bytes())
    assert page @ server / np.linalg.norm(page) / np.linalg.norm(server) >= 0.99
    # The code came from the app itself, the model files and answers from the gateway.
    code = [u for u in requests if u.endswith((".js", ".mjs", ".wasm"))]
    assert code and all(u.startswith(app_origin + "/lib/") for u in code), code
    models = [u for u in requests if "/models/" in u]
    assert models and all(u.startswith(mesh.gateway_url + "/models/") for u in models), models
    assert not [e for e in console if e["level"] == "SEVERE"], console


# Last: it stops the embedder.
def test_api_docs_load_from_the_gateway_itself_and_list_the_operations(mesh: Mesh) -> None:
    """Swagger UI under the gateway's CSP, no file from anywhere else."""
    with browser.chromium() as driver:
        driver.get(mesh.gateway_url + "/docs")
        browser.wait_for(
            lambda: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= 10,
            what="the operations",
        )
        text = driver.find_element(By.ID, "swagger-ui").text
        for operation in ("searchByFingerprint", "listItems", "addImage", "rebuildIndex"):
            assert operation in text, operation
        urls = [r["url"] for r in browser.sent_requests(driver)]
        hosts = {u.split("/")[2] for u in urls if u.startswith(("http:", "https:"))}
        assert hosts == {mesh.gateway_url.split("/")[2]}, hosts
        refused = [
            e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]
        ]
        assert not refused, refused


def test_admin_page_shows_the_index_and_the_rebuild_gate(
    mesh: Mesh, catalog: dict[int, str]
) -> None:
    with browser.chromium() as driver:
        open_admin(driver, mesh)
        summary = driver.find_element(By.ID, "index-summary").text
        counts = re.search(r"(\d+) of (\d+) images embedded", summary)
        assert counts and int(counts[2]) >= COVERS and "0 failed" in summary, summary
        assert driver.find_element(By.ID, "photo-search").is_selected()
        assert "set (hidden)" in driver.find_element(By.ID, "key-state").text
        assert VISION_KEY not in driver.page_source
        workers = driver.find_element(By.ID, "workers").text
        assert "cpu" in workers and "img/s" in workers, workers
        # The engines the embedder timed: one serving per graph, each other one slower
        # or refused with its reason.
        driver.find_element(By.ID, "runtime-summary").click()
        rows = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#runtime-trials tr")]
        assert [r.split()[0] for r in rows if r.endswith("serving")] == ["fingerprint", "local"]
        assert len(rows) == 10 and all(
            r.endswith(("serving", "slower")) or "drifts from fp32" in r for r in rows
        ), rows
        assert driver.find_element(By.ID, "rebuild").is_enabled()
        mesh.stop_service("embedder")
        try:
            browser.wait_for(
                lambda: not driver.find_element(By.ID, "rebuild").is_enabled(),
                timeout=30,
                what="the rebuild button to be disabled",
            )
            reason = driver.find_element(By.ID, "rebuild-reason").text
            assert "no embedder worker is online" in reason
        finally:  # the later tests of this module need it (the review queue embeds)
            mesh.start_service("embedder")
            mesh.wait_until_serving(60)


def test_admin_duplicate_view_shows_a_copy_found_by_its_hash(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    """A mirrored, re-encoded copy of a cover entered as another item is listed with the
    signal that found it, the view that matched and both PDQ hashes; a copy of another
    cover turned by an odd angle, which no hash view matches, is listed as found by its
    pixels."""
    cover = Image.open(dvd_reference(4)).convert("RGB").transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    copies = {
        "Cover 004 copy": cover,
        "Cover 005 turned": turned_and_zoomed(Image.open(dvd_reference(5)).convert("RGB"), 14),
    }
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth) as http:
        for name, picture in copies.items():
            copy_path = tmp_path / "copy.jpg"
            picture.save(copy_path, "JPEG", quality=35)
            item = http.post("/api/v1/items", json={"name": name}).json()
            photo = {"photo": ("copy.jpg", copy_path.read_bytes(), "image/jpeg")}
            assert http.post(f"/api/v1/items/{item['id']}/images", files=photo).status_code == 201
        admin = mesh.admin_auth

        def hashed() -> bool:  # catalog hashes just after the add
            report = http.get("/api/v1/admin/duplicates", headers=admin).json()
            return report["unhashed_images"] == 0

        browser.wait_for(hashed, timeout=30, what="the copy to be hashed")
    with browser.chromium() as driver:
        open_admin(driver, mesh)
        driver.find_element(By.ID, "duplicates-load").click()

        def copy_row(name: str, signal: str):
            for row in driver.find_elements(By.CSS_SELECTOR, "#duplicates li"):
                if name in row.text and signal in row.get_attribute("data-signals").split():
                    return row
            return None

        turned = browser.wait_for(
            lambda: copy_row("Cover 005 turned", "copy_pixels"), what="the turned copy"
        )
        assert re.search(r"copy \(pixels 0\.9\d\d, aligned by keypoints\)", turned.text), (
            turned.text
        )
        row = browser.wait_for(
            lambda: copy_row("Cover 004 copy", "copy_hash"), what="the copy in the duplicate view"
        )
        assert "Cover 004 ↔" in row.text or "↔ Cover 004" in row.text, row.text
        assert re.search(r"copy \(PDQ \d+ bits, mirrored\)", row.text), row.text
        codes = [c.text for c in row.find_elements(By.CSS_SELECTOR, "code.hash")]
        assert len(codes) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", c) for c in codes), codes
        summary = driver.find_element(By.ID, "duplicates-summary").text
        assert "by perceptual hash, within 31 bits" in summary, summary


def test_admin_reviews_contributions_and_edits_the_catalog(
    mesh: Mesh, catalog: dict[int, str]
) -> None:
    """A contributor's copy of cover 3 shows cover 3 as its nearest item and is rejected; a
    new item is approved and becomes public; an item is edited and a photo deleted, all on
    the admin page."""
    lego = sorted(LEGO.rglob("*.jpg"))[1]
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.contributor_auth) as http:
        added = {}
        for name, path in [("Cover 003 again", dvd_reference(3)), ("A new figure", lego)]:
            item = http.post("/api/v1/items", json={"name": name}).json()
            photo = {"photo": (path.name, path.read_bytes(), "image/jpeg")}
            reply = http.post(f"/api/v1/items/{item['id']}/images", files=photo)
            assert reply.status_code == 201 and reply.json()["image"]["pending"], reply.text
            added[name] = item["id"]

    def nearest_known() -> bool:
        """The queue has embedded the copy (a fresh embedder loads its model first)."""
        with httpx.Client(base_url=mesh.gateway_url, timeout=60, headers=mesh.admin_auth) as http:
            queue = http.get("/api/v1/admin/review").json()
        return any(
            c["item"]["id"] == added["Cover 003 again"] and c["pending_images"][0]["nearest"]
            for c in queue["contributions"]
        )

    browser.wait_for(nearest_known, timeout=120, what="the copy's nearest items")
    with browser.chromium() as driver:
        open_admin(driver, mesh)

        def entry(item_id: str):
            found = driver.find_elements(
                By.CSS_SELECTOR, f'#review-list li[data-item-id="{item_id}"]'
            )
            return found[0] if found else None

        copy = browser.wait_for(lambda: entry(added["Cover 003 again"]), what="the copy queued")
        nearest = copy.find_elements(By.CSS_SELECTOR, ".nearest li")
        assert nearest and nearest[0].get_attribute("data-item-id") == catalog[3], copy.text
        assert "from contributor-token" in copy.text
        reject = copy.find_element(By.CSS_SELECTOR, 'button[data-action="review.reject_item"]')
        assert reject.text == "Reject item"
        reject.click()
        assert reject.text == "Really reject item?"
        reject.click()
        browser.wait_for(lambda: entry(added["Cover 003 again"]) is None, what="the copy rejected")
        new = entry(added["A new figure"])
        new.find_element(By.CSS_SELECTOR, 'button[data-action="review.approve_item"]').click()
        browser.wait_for(lambda: entry(added["A new figure"]) is None, what="the item approved")
        assert "Approved" in driver.find_element(By.ID, "review-message").text

        # The catalog view: find the new item, edit it, delete its photo.
        driver.find_element(By.ID, "catalog-query").send_keys("A new figure")
        driver.find_element(By.CSS_SELECTOR, "#catalog-form button").click()
        # The list the search drew (the one drawn at sign-in would go stale under us).
        listed = '#catalog-items[data-query="A new figure"]'
        row_css = f'{listed} li[data-item-id="{added["A new figure"]}"]'
        row = browser.wait_for(
            lambda: (driver.find_elements(By.CSS_SELECTOR, row_css) or [None])[0],
            what="the item found",
        )
        row.find_element(By.CSS_SELECTOR, 'button[data-action="catalog.edit"]').click()
        series = row.find_element(By.CSS_SELECTOR, "form.edit input[name=series]")
        series.send_keys("Minifigures")
        row.find_element(By.CSS_SELECTOR, "form.edit button[type=submit]").click()
        browser.wait_for(
            lambda: "Saved" in driver.find_element(By.ID, "catalog-message").text, what="saved"
        )
        row = driver.find_element(By.CSS_SELECTOR, row_css)
        assert "Minifigures" in row.text
        row.find_element(By.CSS_SELECTOR, 'button[data-action="catalog.photos"]').click()
        delete = browser.wait_for(
            lambda: (row.find_elements(By.CSS_SELECTOR, ".photos figure button") or [None])[0],
            what="the photos",
        )
        delete.click()
        delete.click()
        browser.wait_for(lambda: "No photos" in row.text, what="the photo deleted")
    with httpx.Client(base_url=mesh.gateway_url, timeout=30) as http:
        assert http.get(f"/api/v1/items/{added['Cover 003 again']}").status_code == 404
        item = http.get(f"/api/v1/items/{added['A new figure']}").json()
        assert (item["pending"], item["series"], item["image_count"]) == (False, "Minifigures", 0)


def test_the_page_speaks_french_to_a_french_browser_and_remembers_a_switch(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    with browser.chromium(languages="fr-FR,fr") as driver:
        open_page(driver, mesh)
        assert driver.execute_script("return document.documentElement.lang") == "fr"
        assert driver.find_element(By.TAG_NAME, "h1").text == "Reconnaître par photo"
        assert driver.title == "photosearch : reconnaître par photo"
        status = driver.find_element(By.ID, "status").text
        assert status == "Photographiez l'objet, ou choisissez une photo de lui.", status
        web = driver.find_element(By.ID, "web-search").get_attribute("textContent")
        assert web == "Chercher sur le web"
        pick(driver, turned_copy(tmp_path, 2), searches=1)
        heading = driver.find_element(By.CSS_SELECTOR, "#results h2").text
        assert heading == "Est-ce l'un de ceux-ci ?"
        band = driver.find_element(By.ID, "band-text").text
        assert band in {
            "Correspondance : c'est cet objet.",
            "Correspondances possibles : vérifiez les photos.",
            "Aucune bonne correspondance dans le catalogue.",
        }, band
        assert driver.find_element(By.CSS_SELECTOR, "#candidates li button").text == "Celui-ci"
        stages = driver.find_elements(By.CSS_SELECTOR, "#timings tbody th")
        assert stages[0].get_attribute("textContent") == "Modèle"
        # The visitor switches to English: kept on this device, across reloads.
        Select(driver.find_element(By.ID, "language")).select_by_value("en")
        browser.wait_for(
            lambda: driver.execute_script(
                "return document.documentElement.lang === 'en' && document.body.dataset.ready"
            ),
            what="the English page",
        )
        assert driver.find_element(By.TAG_NAME, "h1").text == "Recognise by photo"
        open_page(driver, mesh)
        assert driver.find_element(By.TAG_NAME, "h1").text == "Recognise by photo"


def test_the_admin_page_in_french(mesh: Mesh, catalog: dict[int, str]) -> None:
    with browser.chromium(languages="fr-CA,fr,en") as driver:
        open_admin(driver, mesh)
        assert driver.find_element(By.ID, "rebuild").text == "Réindexer"
        summary = driver.find_element(By.ID, "index-summary").text
        assert re.search(r"\d+ images indexées sur \d+", summary), summary
        assert driver.find_element(By.CSS_SELECTOR, "#review h2").text == "File de validation"
        assert driver.find_element(By.ID, "key-state").text == "définie (masquée)"


def test_admin_imports_a_csv_of_photo_urls_with_a_progress_bar(
    mesh: Mesh, catalog: dict[int, str], tmp_path: Path
) -> None:
    figures = sorted(LEGO.rglob("*.jpg"))[2:5]
    with PhotoServer() as web:
        rows = []
        for n, path in enumerate(figures):
            web.photos[f"{n}.jpg"] = path.read_bytes()
            rows.append(f"Imported figure {n},LEGO,{web.url}/pace/{n}.jpg")
        rows.append(f"Lost figure,LEGO,{web.url}/missing")
        sheet = tmp_path / "photos.csv"
        sheet.write_text("name,series,image_url\n" + "\n".join(rows) + "\n")
        with browser.chromium() as driver:
            open_admin(driver, mesh)
            driver.find_element(By.ID, "import-csv").send_keys(str(sheet))
            driver.find_element(By.CSS_SELECTOR, "#import-form button[type=submit]").click()
            message = driver.find_element(By.ID, "import-message")
            browser.wait_for(lambda: message.text, what="the import started")
            assert message.text == "Started: 4 photos to import.", message.text
            row = browser.wait_for(
                lambda: (
                    driver.find_elements(By.CSS_SELECTOR, '#imports li[data-state="done"]')
                    or [None]
                )[0],
                timeout=60,
                what="the import done",
            )
            bar = row.find_element(By.TAG_NAME, "progress")
            assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("4", "4")
            assert "Done: 3 of 4 imported, 1 failed." in row.text, row.text
            row.find_element(By.TAG_NAME, "summary").click()
            assert f"{web.url}/missing: HTTP 404" in row.text
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth) as http:
        found = http.get("/api/v1/admin/items", params={"query": "Imported figure"}).json()
        assert sorted(i["name"] for i in found["items"]) == [
            f"Imported figure {n}" for n in range(3)
        ]


def test_a_contributor_signs_in_with_the_identity_provider(
    mesh: Mesh, catalog: dict[int, str], issuer: LocalIssuer
) -> None:
    """A refused write offers the provider's sign-in; the page goes there and back (the
    authorization code flow with PKCE, the code redeemed by the gateway) and writes as the
    signed-in contributor, whose item waits for review."""
    issuer.user = "zoe"
    with browser.chromium() as driver:
        open_page(driver, mesh)
        driver.find_element(By.ID, "add-manually").click()
        form = driver.find_element(By.ID, "manual-form")
        form.find_element(By.NAME, "name").send_keys("Signed-in figure")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        result = driver.find_element(By.ID, "manual-result")
        browser.wait_for(lambda: result.text, what="the refusal")
        assert "Sign in below" in result.text, result.text
        button = driver.find_element(By.ID, "contributor-oidc")
        assert button.is_displayed() and button.text == "Sign in with your account"
        button.click()
        browser.wait_for(
            lambda: (
                driver.execute_script("return document.body.dataset.ready")
                and "Signed in as zoe" in driver.find_element(By.ID, "contributor-reason").text
            ),
            what="back from the provider, signed in",
        )
        assert "code=" not in driver.current_url  # the address bar is tidied
        reason = driver.find_element(By.ID, "contributor-reason")
        assert reason.text == "Signed in as zoe."
        driver.find_element(By.ID, "add-manually").click()
        form = driver.find_element(By.ID, "manual-form")
        form.find_element(By.NAME, "name").send_keys("Signed-in figure")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        result = driver.find_element(By.ID, "manual-result")
        browser.wait_for(lambda: "review" in result.text, what="the item sent")
        assert result.text == 'Thanks: "Signed-in figure" waits for an admin\'s review.'
    with httpx.Client(base_url=mesh.gateway_url, timeout=30, headers=mesh.admin_auth) as http:
        found = http.get("/api/v1/admin/items", params={"query": "Signed-in figure"}).json()
        assert [(i["pending"], i["added_by"]) for i in found["items"]] == [(True, "oidc:zoe")]
