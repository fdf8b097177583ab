// "Recognise by photo": fingerprint (and local descriptors, when the model has a local
// graph) on the device, send only those vectors, show candidates. The fingerprinting is the
// @photosearch/fingerprint module (/static/fingerprint/), which other apps import too.
import {
  AS_TAKEN, chooseBackend, createRuntime, Fingerprinter, ORT_MODULES, RegionDescriber, TURNED, TURNS,
} from "/static/fingerprint/index.js";
import { api, el, serverTimings } from "/static/js/api.js";
import * as collection from "/static/js/collection.js";
import * as contributor from "/static/js/contributor.js";
import { codeText, errorText, setup as setupLanguage, t } from "/static/js/i18n.js";
import { Scanner, scanAvailable } from "/static/js/scan.js";

const $ = (id) => document.getElementById(id);
const state = {
  config: null,
  runtime: null,
  fingerprinter: null,
  loading: null,
  describer: null,
  describerLoading: null,
  file: null,
  photo: null,
  searches: 0,
};
// For tests and curious users: what the page computed and sent, and how long it took (ms).
// `options.turnedViews`: "when asked" (by search), or "always" (all three views in one search,
// to measure against). `options.fingerprintFirst`: with a model that compares regions, show
// the fingerprint's candidates while the photo's regions are computed (false: wait for them).
// `options.workerInference`: run the models in a worker (false: on the page's thread);
// `options.backend`: "auto" (WebGPU on a GPU adapter, wasm otherwise), "webgpu" or "wasm"; both
// read when the first photo loads the runtime. `backend`: where the models run, and why.
window.photosearch = {
  state, lastFingerprint: null, lastQuery: null, timings: {}, backend: null,
  options: { turnedViews: "when asked", fingerprintFirst: true, workerInference: true, backend: "auto" },
};

function status(text) {
  $("status").textContent = text;
}

function showProgress(received, total, cached, what = "progress.model") {
  $("progress").hidden = false;
  $("progress-bar").value = total ? received / total : 0;
  const values = { what: t(what), received: (received / 1e6).toFixed(1), total: (total / 1e6).toFixed(1) };
  $("progress-text").textContent = t(cached ? "progress.cached" : "progress.downloading", values);
}

// onnxruntime-web from where the gateway serves it (/config's ort_base_url), loaded with the
// first photo: its WebGPU build where the browser has a GPU adapter, the wasm one otherwise.
function runtime() {
  if (!state.runtime) {
    state.runtime = openRuntime(window.photosearch.options.backend);
    state.runtime.catch(() => { state.runtime = null; });
  }
  return state.runtime;
}

// The models run in onnxruntime-web's worker: the page answers taps while they run.
const runtimeOptions = (backend) => ({
  wasmPaths: state.config.ort_base_url, proxy: window.photosearch.options.workerInference, backend,
});

async function openRuntime(preference) {
  const choice = await chooseBackend({ preference });
  const ort = await import(`${state.config.ort_base_url}${ORT_MODULES[choice.backend]}`);
  window.photosearch.backend = choice;
  return createRuntime(ort, runtimeOptions(choice.backend));
}

// `load(runtime)` opens a model; one WebGPU cannot open leaves the page on wasm from then on
// (the WebGPU build runs wasm too: nothing more to download).
async function openModel(load) {
  const rt = await runtime();
  try {
    return await load(rt);
  } catch (error) {
    if (rt.backend !== "webgpu") throw error;
    console.warn("WebGPU could not open the model; running it in wasm", error);
    const wasm = createRuntime(rt.ort, runtimeOptions("wasm"));
    window.photosearch.backend = { ...window.photosearch.backend, backend: "wasm", reason: `WebGPU failed: ${error.message}` };
    state.runtime = Promise.resolve(wasm);
    // A fingerprint model already open in WebGPU is opened again in wasm with the next photo.
    if (state.fingerprinter?.runtime.backend === "webgpu") {
      state.fingerprinter = null;
      state.loading = null;
    }
    return load(wasm);
  }
}

async function fingerprinter() {
  if (state.fingerprinter) return state.fingerprinter;
  if (!state.loading) {
    state.loading = openModel((rt) => Fingerprinter.load(state.config.model, { runtime: rt, onProgress: showProgress }));
  }
  try {
    state.fingerprinter = await state.loading;
  } catch (error) {
    state.loading = null;
    throw error;
  }
  $("progress").hidden = true;
  return state.fingerprinter;
}

// The local graph, loaded once after the first fingerprint (null: the model has none).
async function regionDescriber() {
  if (!state.config.model.local) return null;
  if (state.describer) return state.describer;
  if (!state.describerLoading) {
    const onProgress = (received, total, cached) => showProgress(received, total, cached, "progress.region_model");
    state.describerLoading = openModel((rt) => RegionDescriber.load(state.config.model, { runtime: rt, onProgress }));
  }
  try {
    state.describer = await state.describerLoading;
  } catch (error) {
    state.describerLoading = null;
    throw error;
  }
  $("progress").hidden = true;
  return state.describer;
}

// Local descriptors of the photo at `which` turns ("as taken"; "turned": 90 and 270 degrees;
// "all": the three), or none: a failure here only costs the re-ranking (or the turned views),
// so the search goes ahead with what it has.
async function localDescriptors(photo, which = "as taken", quiet = false) {
  if (!state.config.model.local) return [];
  const turned = which === "turned";
  try {
    if (!state.describer) status(t("status.loading_regions"));
    const describer = await regionDescriber();
    const turns = { "as taken": AS_TAKEN, turned: TURNED, all: TURNS }[which];
    const onView = (index, total) => quiet ? null : !turned
      ? status(t("status.comparing_regions", { index: index + 1, total }))
      : turnedStatus(t("turned.checking_view", { index: index + 1, total }));
    const { views, times, runTimes } = await describer.describe(photo, onView, turns);
    const timings = window.photosearch.timings;
    timings.local_ms = [...(timings.local_ms ?? []), ...times];
    timings.local_run_ms = [...(timings.local_run_ms ?? []), ...runTimes];
    return views;
  } catch (error) {
    $("progress").hidden = true;
    $("search-note").hidden = false;
    $("search-note").textContent = !turned
      ? t("notes.fingerprint_only", { reason: error.message })
      : t("notes.turned_unchecked", { reason: error.message });
    document.body.dataset.localError = error.message;
    return [];
  }
}

// A quiet line under the results while turned views are checked ("" hides it).
function turnedStatus(text) {
  $("turned-status").hidden = !text;
  $("turned-status").textContent = text;
}

// The one score candidates are ranked by: the fingerprint similarity, plus what verified
// regions add when search re-ranked them.
const scoreText = (score) => score.toFixed(2);

// How much the answer can be trusted (search's band, chosen on held-out items).
const bandText = (band) => (band ? t(`bands.${band}`) : "");

// What the list shows of an answer: an answer that shows the same is not drawn again.
const shown = (result) => JSON.stringify([result.band, ...result.candidates.map((c) => [
  c.item.id, c.image_id, c.verified, c.inliers, scoreText(c.score)])]);

function renderBand(band) {
  $("band").dataset.band = band;
  $("band-text").textContent = bandText(band);
  $("band-add").hidden = band !== "no_match";
  // No good match: adding the item by hand comes first.
  const main = $("results").parentElement;
  if (band === "no_match") main.insertBefore($("manual"), $("results"));
  else main.insertBefore($("manual"), $("web").nextSibling);
}

function renderCandidates(result) {
  const { candidates } = result;
  const list = $("candidates");
  if (!$("results").hidden && list.dataset.shown === shown(result)) return;
  list.dataset.shown = shown(result);
  renderBand(result.band ?? "possible");
  list.replaceChildren();
  $("results").hidden = false;
  $("no-candidates").hidden = candidates.length > 0;
  for (const candidate of candidates) {
    const { item } = candidate;
    const details = [item.series, item.maker, item.year].filter(Boolean).join(" · ");
    // Verified: the photo's regions match this item's image under one geometric mapping,
    // far above what they match of the other candidates (search's verified flag).
    const verified = candidate.verified
      ? el("span", { class: "verified", title: t("results.matching_regions", { count: candidate.inliers }), text: t("results.verified") })
      : "";
    list.append(
      el("li", { class: "candidate", "data-item-id": item.id, "data-inliers": String(candidate.inliers ?? 0) },
        el("img", { src: candidate.thumbnail_url, alt: item.name, loading: "lazy" }),
        el("div", { class: "grow" },
          el("strong", { class: "name", text: item.name }),
          verified,
          el("div", { class: "quiet", text: details })),
        el("span", {
          class: "score",
          title: t("results.fingerprint_score", { score: scoreText(candidate.global_score ?? candidate.score) }),
          text: scoreText(candidate.score),
        }),
        el("button", { type: "button", text: t("results.this_one"), onclick: () => confirm(item) })),
    );
  }
}

function confirm(item) {
  state.confirmed = item;
  $("collect-result").textContent = "";
  $("confirmed").hidden = false;
  $("confirmed").dataset.itemId = item.id;
  $("confirmed-text").textContent = `${item.name}${item.series ? ` (${item.series})` : ""}`;
  $("add-photo").disabled = false;
  $("add-photo-result").textContent = "";
  $("results").hidden = true;
}

async function renderCollection() {
  const rows = await collection.entries();
  $("collection-empty").hidden = rows.length > 0;
  $("collection-table").hidden = rows.length === 0;
  $("collection-export").hidden = rows.length === 0;
  $("collection-download").hidden = true;
  $("collection-table").tBodies[0].replaceChildren(...rows.map((row) => {
    const details = [row.series, row.maker, row.year, row.variant].filter(Boolean).join(" · ");
    const update = (delta) => async () => { await collection.change(row, delta); await renderCollection(); };
    return el("tr", { "data-item-id": row.id },
      el("td", {}, el("strong", { text: row.name }), el("div", { class: "quiet", text: details })),
      el("td", { class: "count", text: String(row.count) }),
      el("td", { class: "row" },
        el("button", { type: "button", class: "less", "aria-label": t("collection.one_less", { name: row.name }), text: "−", onclick: update(-1) }),
        el("button", { type: "button", class: "more", "aria-label": t("collection.one_more", { name: row.name }), text: "+", onclick: update(1) }),
        el("button", { type: "button", class: "remove", text: t("collection.remove"),
          onclick: async () => { await collection.remove(row.id); await renderCollection(); } })));
  }));
}

async function collectConfirmed() {
  if (!state.confirmed) return;
  try {
    await collection.change(state.confirmed, 1);
    $("collect-result").textContent = t("collection.added");
    await renderCollection();
  } catch (error) {
    $("collect-result").textContent = t("collection.not_saved", { reason: error.message });
  }
}

async function exportCollection() {
  const csv = collection.toCsv(await collection.entries());
  const link = $("collection-download");
  // A data: URL, which the page's CSP allows (a blob: one it would not fetch).
  link.href = `data:text/csv;charset=utf-8,${encodeURIComponent(csv)}`;
  link.hidden = false;
  link.click();
}

async function addPhotoToConfirmed() {
  const itemId = $("confirmed").dataset.itemId;
  if (!state.file || !itemId) return;
  const form = new FormData();
  form.append("photo", state.file);
  $("add-photo").disabled = true;
  try {
    const added = await api(`/api/v1/items/${itemId}/images`, {
      method: "POST", form, token: contributor.token(),
    });
    $("add-photo-result").textContent = t(!added.created ? "confirmed.already"
      : added.image.pending ? "confirmed.pending" : "confirmed.added");
  } catch (error) {
    const signIn = contributor.refused(error) ? ` ${t("confirmed.sign_in_retry")}` : "";
    $("add-photo-result").textContent = t("confirmed.not_added", { reason: errorText(error) }) + signIn;
    $("add-photo").disabled = false;
  }
}

// `quiet`: the results on screen stay as they are, and so does the status line.
async function search(query, quiet = false) {
  window.photosearch.lastQuery = query;
  if (!quiet) status(t("status.searching"));
  let server = [];
  const onReply = (reply) => { server = serverTimings(reply.headers.get("server-timing")); };
  const result = await api("/api/v1/search", { method: "POST", json: query, onReply });
  window.photosearch.lastResult = result;
  window.photosearch.timings.server = server;
  return result;
}

// The details panel: the device's stages (model, fingerprint, regions), then the
// gateway's Server-Timing of the last search.
// Rows are [stage, label, value]; the stage (data-stage) is a stable name.
const SERVER_STAGES = [
  "candidates", "region_index", "region_words", "region_query", "descriptors", "rerank", "names", "search", "catalog",
];

const runtimeText = (choice) => (choice?.backend === "webgpu"
  ? t("runtimes.webgpu", { adapter: choice.adapter })
  : t("runtimes.wasm", { count: state.fingerprinter?.runtime.threads ?? 1 }));

function showTimings(modelId) {
  const times = window.photosearch.timings;
  const sum = (values) => (values ?? []).reduce((a, b) => a + b, 0);
  const rows = [
    ["model", t("stages.model"), modelId],
    ["runtime", t("stages.runtime"), runtimeText(window.photosearch.backend)],
    ["fingerprint", t("stages.fingerprint"), `${times.fingerprint_ms.toFixed(0)} ms`],
  ];
  if (times.local_ms?.length) {
    rows.push(["regions", t("stages.regions", { count: times.local_ms.length }), `${sum(times.local_ms).toFixed(0)} ms`]);
  }
  for (const [stage, ms] of times.server ?? []) {
    const label = SERVER_STAGES.includes(stage) ? t(`stages.${stage}`) : stage;
    rows.push([stage, label, `${ms.toFixed(1)} ms`]);
  }
  rows.push(["page", t("stages.page"), `${times.final_results_ms.toFixed(0)} ms`]);
  const body = $("timings-table").tBodies[0];
  body.replaceChildren(...rows.map(([stage, label, value]) =>
    el("tr", { "data-stage": stage }, el("th", { scope: "row", text: label }), el("td", { text: value }))));
  $("timings").hidden = false;
}

// An answer on screen; `mark`: the page's time from the photo to it (ms).
const NEXT_STEPS = ["match", "possible", "no_match"];

function show(result, mark, started) {
  renderCandidates(result);
  window.photosearch.timings[mark] = performance.now() - started;
  const step = NEXT_STEPS.includes(result.band) ? result.band : "possible";
  status(t(result.candidates.length ? `next.${step}` : "status.no_match"));
}

// The fingerprint's candidates, on screen while the regions are still being compared: no
// band yet (the regions may change the order and the verdict).
function showProvisional(result, started) {
  renderCandidates({ ...result, band: "checking" });
  window.photosearch.timings.first_results_ms = performance.now() - started;
  window.photosearch.timings.provisional = true;
}

// Search asked for the turned views (the photo as taken verified nothing well): the same
// query again with the views turned 90 and 270 degrees after the first one, whose answer
// replaces the one shown. If this fails, the first answer stays.
async function searchTurned(photo, query, current, started) {
  turnedStatus(t("turned.checking"));
  try {
    const turned = await localDescriptors(photo, "turned");
    if (!turned.length || state.photo !== current) return;
    const result = await search({ ...query, local: [...query.local, ...turned] }, true);
    if (state.photo !== current) return;
    show(result, "final_results_ms", started);
  } catch (error) {
    $("search-note").hidden = false;
    $("search-note").textContent = t("notes.turned_unchecked", { reason: errorText(error) });
  } finally {
    if (state.photo === current) turnedStatus("");
  }
}

async function onPhoto(file) {
  if (!file) return;
  stopScan();
  // A photo picked while the last one is still searched replaces it: its answers are dropped.
  const current = (state.photo = {});
  state.file = file;
  $("preview").src = URL.createObjectURL(file);
  $("preview").hidden = false;
  $("confirmed").hidden = true;
  $("web").hidden = !state.config.web_fallback_available;
  $("web-results").hidden = true;
  $("attach-label").hidden = false;
  $("search-note").hidden = true;
  $("timings").hidden = true;
  turnedStatus("");
  delete document.body.dataset.localError;
  if (!state.config.photo_search_available) return;
  try {
    status(t("status.loading_model"));
    const model = await fingerprinter();
    status(t("status.fingerprinting"));
    const started = performance.now();
    const photo = await model.decode(file);
    const fingerprinted = performance.now();
    const vector = await model.fingerprint(photo);
    window.photosearch.timings = { fingerprint_ms: performance.now() - fingerprinted, fingerprint_run_ms: model.lastRunMs };
    window.photosearch.lastFingerprint = vector;
    const query = { model_id: model.asset.model_id, vector, k: 10 };
    // The fingerprint's answer first (a few ms of search), while the regions are computed.
    const early = Boolean(state.config.model.local) && window.photosearch.options.fingerprintFirst;
    let result = early ? await search(query) : null;
    if (state.photo !== current) return;
    if (result) showProvisional(result, started);
    // The photo as taken first: most photos are upright and verify with it alone.
    const always = window.photosearch.options.turnedViews === "always";
    const local = await localDescriptors(photo, always ? "all" : "as taken");
    if (local.length) query.local = local;
    if (state.photo !== current) return;
    if (!result || local.length) result = await search(query, Boolean(result));
    if (state.photo !== current) return;
    show(result, early ? "final_results_ms" : "first_results_ms", started);
    window.photosearch.timings.turned_views = Boolean(result.turned_views_wanted && query.local?.length === 1);
    if (window.photosearch.timings.turned_views) await searchTurned(photo, query, current, started);
    else window.photosearch.timings.final_results_ms ??= window.photosearch.timings.first_results_ms;
    if (state.photo !== current) return;
    showTimings(model.asset.model_id);
    state.searches += 1;
    document.body.dataset.searches = String(state.searches);
  } catch (error) {
    if (state.photo !== current) return; // the search of a photo since replaced
    status(t("status.search_failed", { reason: errorText(error) }));
    document.body.dataset.searchError = error.message;
  }
}

// Live scan (scan.js): each frame is searched as a photo as taken, the answer drawn in
// place; the scan stops on a steady match and the page asks for one tap.
async function identifyFrame(photo) {
  const model = await fingerprinter();
  const started = performance.now();
  const vector = await model.fingerprint(photo);
  const query = { model_id: model.asset.model_id, vector, k: 10 };
  const local = await localDescriptors(photo, "as taken", true);
  if (local.length) query.local = local;
  const result = await search(query, true);
  const scan = window.photosearch.scan;
  scan.frame_ms = [...scan.frame_ms, performance.now() - started];
  return result;
}

async function startScan() {
  stopScan();
  state.photo = {}; // a photo search in flight is dropped
  $("confirmed").hidden = true;
  $("preview").hidden = true;
  document.body.dataset.scanState = "starting";
  window.photosearch.scan = { frame_ms: [], started: performance.now() };
  try {
    status(t("status.loading_model"));
    await fingerprinter();
    if (state.config.model.local) await regionDescriber();
    const scanner = new Scanner($("scan-video"), state.config.model.preprocess, {
      identify: identifyFrame,
      onResult: (result) => {
        renderCandidates(result);
        status(t("scan.scanning", { band: bandText(result.band) }));
        document.body.dataset.scanFrames = String(scanner.stats.searched);
      },
      onStop: (reason, result) => scanStopped(scanner, reason, result),
    });
    state.scanner = scanner;
    $("scan").hidden = false;
    await scanner.start();
    document.body.dataset.scanState = "scanning";
    status(t("scan.point"));
  } catch (error) {
    $("scan").hidden = true;
    state.scanner = null;
    document.body.dataset.scanState = "unavailable";
    status(t("scan.no_camera", { reason: error.message || error.name }));
  }
}

function stopScan() {
  state.scanner?.stop("stopped");
}

async function scanStopped(scanner, reason, result) {
  $("scan").hidden = true;
  if (state.scanner === scanner) state.scanner = null;
  window.photosearch.scan.stats = scanner.stats;
  if (reason !== "matched") {
    document.body.dataset.scanState = "stopped";
    status(t("scan.stopped"));
    return;
  }
  const item = result.candidates[0].item;
  const frame = await scanner.frameBlob();
  if (frame) { // the matched frame stands in for a photo: "add my photo", the web search
    state.file = new File([frame], "scan.jpg", { type: "image/jpeg" });
    $("preview").src = URL.createObjectURL(frame);
    $("preview").hidden = false;
    $("web").hidden = !state.config.web_fallback_available;
  }
  document.body.dataset.scanState = "matched";
  status(t("scan.found", { name: item.name, button: t("results.this_one") }));
}

async function searchTheWeb() {
  if (!state.file) return;
  const form = new FormData();
  form.append("photo", state.file);
  $("web-search").disabled = true;
  status(t("web.asking"));
  try {
    const leads = await api("/api/v1/fallback/web", { method: "POST", form });
    $("web-results").hidden = false;
    $("best-guess").textContent = leads.best_guess || "—";
    const list = $("web-leads");
    list.replaceChildren();
    for (const entity of leads.entities) list.append(el("li", { text: entity.label }));
    for (const page of [...leads.pages, ...leads.full_matching_images, ...leads.visually_similar_images]) {
      const link = el("a", { href: page.url, rel: "noopener noreferrer", target: "_blank", text: page.title || page.url });
      list.append(el("li", {}, link));
    }
    if (leads.best_guess) {
      $("manual-form").elements.name.value = leads.best_guess;
      $("manual-form").hidden = false;
    }
    status(t("web.done"));
  } catch (error) {
    status(t("web.failed", { reason: errorText(error) }));
  } finally {
    $("web-search").disabled = false;
  }
}

async function saveManual(event) {
  event.preventDefault();
  const form = event.target;
  const fields = Object.fromEntries(new FormData(form));
  const item = { name: fields.name };
  for (const key of ["series", "maker"]) if (fields[key]) item[key] = fields[key];
  if (fields.year) item.year = Number(fields.year);
  try {
    const token = contributor.token();
    const created = await api("/api/v1/items", { method: "POST", json: item, token });
    if (state.file && form.elements.attach.checked) {
      const upload = new FormData();
      upload.append("photo", state.file);
      await api(`/api/v1/items/${created.id}/images`, { method: "POST", form: upload, token });
    }
    $("manual-result").textContent = t(created.pending ? "manual.pending" : "manual.added", { name: created.name });
    form.reset();
    form.hidden = true;
  } catch (error) {
    const signIn = contributor.refused(error) ? ` ${t("manual.sign_in_retry")}` : "";
    $("manual-result").textContent = t("manual.failed", { reason: errorText(error) }) + signIn;
  }
}

async function start() {
  try {
    await setupLanguage();
  } catch (error) {
    status(`The page's words did not load (${error.message}). Reload the page.`);
    return;
  }
  for (const id of ["camera", "file"]) $(id).addEventListener("change", (e) => onPhoto(e.target.files[0]));
  $("web-search").addEventListener("click", searchTheWeb);
  $("add-photo").addEventListener("click", addPhotoToConfirmed);
  $("collect").addEventListener("click", collectConfirmed);
  $("collection-export").addEventListener("click", exportCollection);
  renderCollection().catch((error) => {
    $("collection-empty").textContent = t("collection.unavailable", { reason: error.message });
  });
  $("add-manually").addEventListener("click", () => { $("manual-form").hidden = false; });
  $("band-add").addEventListener("click", () => {
    $("manual-form").hidden = false;
    $("manual").scrollIntoView();
  });
  $("manual-cancel").addEventListener("click", () => { $("manual-form").hidden = true; });
  $("manual-form").addEventListener("submit", saveManual);
  try {
    state.config = await api("/api/v1/config");
  } catch (error) {
    contributor.setup(null);
    status(t("status.unreachable", { reason: error.message }));
    return;
  }
  contributor.setup(state.config);
  await contributor.completeSignIn();
  $("pickers").hidden = false;
  $("scan-start").hidden = !(scanAvailable() && state.config.photo_search_available);
  $("scan-start").addEventListener("click", startScan);
  $("scan-stop").addEventListener("click", stopScan);
  const code = state.config.unavailable_code;
  const reason = codeText("unavailable", code, state.config.unavailable_reason);
  status(state.config.photo_search_available ? t("status.ready") : t("status.unavailable", { reason }));
  document.body.dataset.ready = "true";
}

start();
