// Admin page: settings (write-only key), index status, rebuild gate, models, the review
// queue and the catalog (admin_catalog.js), duplicates.
import { catalogView, reviewQueue } from "/static/js/admin_catalog.js";
import { api, el } from "/static/js/api.js";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("photosearch-admin-token") || "";
let timer = null;

const call = (path, options = {}) => api(path, { ...options, token });
const loadReview = reviewQueue(call);
const findItems = catalogView(call);

function showSettings(s) {
  $("photo-search").checked = s.photo_search_enabled;
  $("web-fallback").checked = s.web_fallback_enabled;
  $("key-state").textContent = s.vision_api_key_set ? "set (hidden)" : "not set";
  $("clear-key").disabled = !s.vision_api_key_set;
}

async function updateSettings(change, message) {
  try {
    showSettings(await call("/api/v1/admin/settings", { method: "PUT", json: change }));
    $("settings-message").textContent = message;
  } catch (error) {
    $("settings-message").textContent = `Not saved: ${error.message}`;
  }
}

function showIndex(s) {
  $("index-progress").value = s.progress;
  $("index-summary").textContent =
    `${s.model_id}: ${s.embedded} of ${s.catalog_images} images embedded, ${s.pending} pending, ` +
    `${s.failed} failed, ${s.queue_depth} in the queue` +
    (s.rebuild_in_progress ? " (rebuild running)" : "");
  const rebuild = $("rebuild");
  rebuild.disabled = !s.rebuild.allowed;
  $("rebuild-reason").textContent = s.rebuild.allowed ? "" : s.rebuild.reason;
  rebuild.title = s.rebuild.reason || "";
  const note = [s.embedder.reachable ? "" : "The embedder service is not reachable.", s.embedder.model_note || ""]
    .filter(Boolean).join(" ");
  $("embedder-note").hidden = !note;
  $("embedder-note").textContent = note;
  $("workers").replaceChildren(...(s.workers.length
    ? s.workers.map((w) => el("tr", {},
        el("td", { text: w.worker_id }), el("td", { text: w.device }),
        el("td", { text: w.runtime + (w.runtime_rate ? ` (${w.runtime_rate} img/s)` : "") }),
        el("td", { text: w.model_id }), el("td", { text: w.model_loaded ? "yes" : "no" })))
    : [el("tr", {}, el("td", { colspan: "5", text: "No embedder worker is online." }))]));
  showRuntimes(s.embedder);
  $("failures-box").hidden = s.failures.length === 0;
  $("failures").replaceChildren(...s.failures.map((f) => el("li", { text: `${f.image_id}: ${f.reason}` })));
}

// The engines the embedder timed on its host, the chosen one first per graph.
function showRuntimes(embedder) {
  const trials = embedder.runtime_trials || [];
  $("runtime-box").hidden = trials.length === 0;
  $("runtime-summary").textContent = `Runtimes timed on the embedder (EMBED_RUNTIME=${embedder.runtime_setting})` +
    (embedder.runtime_cached ? ", measured on an earlier start" : "");
  const ordered = [...trials].sort((a, b) => a.graph.localeCompare(b.graph) || b.chosen - a.chosen || b.rate - a.rate);
  $("runtime-trials").replaceChildren(...ordered.map((t) => el("tr", { class: t.chosen ? "chosen" : "" },
    el("td", { text: t.graph }), el("td", { text: t.engine }),
    el("td", { text: t.rate ? String(t.rate) : "" }),
    el("td", { text: t.min_cosine === null ? "" : t.min_cosine.toFixed(5) }),
    el("td", { text: t.chosen ? "serving" : (t.problem || "slower") }))));
}

function showModels(list) {
  $("models").replaceChildren(...list.models.map((m) => el("tr", {},
    el("td", { text: m.model_id + (m.browser_ready ? "" : " (not exported for browsers)") }),
    el("td", { text: String(m.dim) }),
    el("td", { text: String(m.embedded) }),
    el("td", {}, m.active
      ? el("strong", { text: "active" })
      : el("button", { type: "button", text: "Switch to this", onclick: () => switchModel(m.model_id) })))));
}

async function switchModel(modelId) {
  try {
    await call("/api/v1/admin/models/active", { method: "PUT", json: { model_id: modelId } });
    $("model-message").textContent = `Searches now use ${modelId}.`;
  } catch (error) {
    $("model-message").textContent = `Not switched: ${error.message}`;
  }
  await refresh();
}

async function rebuild() {
  $("rebuild").disabled = true;
  try {
    const r = await call("/api/v1/admin/index/rebuild", {
      method: "POST", json: { retry_failed: $("retry-failed").checked },
    });
    $("rebuild-message").textContent = `Queued ${r.queued} images for ${r.model_id}` +
      (r.in_progress ? " so far (still walking the catalog)." : ".");
  } catch (error) {
    $("rebuild-message").textContent = `Rebuild refused: ${error.message}`;
  }
  await refresh();
}

function itemName(ref) {
  return ref.item ? ref.item.name : ref.item_id;
}

// What found a pair, in words: the fingerprints' similarity, the hashes' distance, or both.
function evidence(p) {
  const parts = [];
  if (p.hash_distance !== null) parts.push(`copy (PDQ ${p.hash_distance} bits, ${p.hash_view})`);
  if (p.score !== null) parts.push(`fingerprints ${p.score.toFixed(3)}`);
  return parts.join(" · ");
}

function hashes(p) {
  if (!p.a.copy_hash) return [];
  const quality = (ref) => (ref.hash_quality < 50 ? " (flat picture: weak hash)" : "");
  return [el("code", { class: "hash", text: `${p.a.copy_hash}${quality(p.a)}` }),
    el("code", { class: "hash", text: `${p.b.copy_hash}${quality(p.b)}` })];
}

async function loadDuplicates() {
  $("duplicates-summary").textContent = "Comparing images…";
  try {
    const r = await call("/api/v1/admin/duplicates?limit=50");
    const waiting = r.unhashed_images ? `, ${r.unhashed_images} still being hashed` : "";
    $("duplicates-summary").textContent =
      `${r.images} images compared by fingerprint${r.exact ? "" : " (nearest neighbours)"}, ` +
      `threshold ${r.threshold.toFixed(2)}; ${r.hashed_images} by perceptual hash, ` +
      `within ${r.hash_max_distance} bits${waiting}.`;
    $("duplicates").replaceChildren(...r.duplicates.map((p) => el("li", { "data-signals": p.signals.join(" ") },
      el("img", { src: p.a.thumbnail_url, alt: "" }), el("img", { src: p.b.thumbnail_url, alt: "" }),
      el("span", { text: `${itemName(p.a)} ↔ ${itemName(p.b)}: ${evidence(p)}` }), ...hashes(p))));
    $("confusables").replaceChildren(...r.confusables.map((c) => el("tr", {},
      el("td", { text: c.item ? c.item.name : c.item_id }),
      el("td", { text: c.nearest ? c.nearest.name : c.nearest_item_id }),
      el("td", { text: c.margin.toFixed(3) }))));
  } catch (error) {
    $("duplicates-summary").textContent = `Report failed: ${error.message}`;
  }
}

async function refresh() {
  try {
    const [settings, index, models] = await Promise.all([
      call("/api/v1/admin/settings"), call("/api/v1/admin/index"), call("/api/v1/admin/models"),
    ]);
    showSettings(settings);
    showIndex(index);
    showModels(models);
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error.status === 401) return signOut("The token was not accepted.");
    $("index-summary").textContent = `Status unavailable: ${error.message}`;
  }
}

function signOut(message) {
  clearInterval(timer);
  sessionStorage.removeItem("photosearch-admin-token");
  token = "";
  $("panel").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
}

async function signIn() {
  $("login").hidden = true;
  $("panel").hidden = false;
  await refresh();
  timer = setInterval(refresh, 5000);
  // Not on the timer: the queue embeds each pending photo to find its nearest items.
  await Promise.all([loadReview(), findItems()]);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("photosearch-admin-token", token);
  signIn();
});
$("photo-search").addEventListener("change", (e) =>
  updateSettings({ photo_search_enabled: e.target.checked }, "Saved."));
$("web-fallback").addEventListener("change", (e) =>
  updateSettings({ web_fallback_enabled: e.target.checked }, "Saved."));
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("vision-key").value.trim();
  $("vision-key").value = ""; // the key never stays in the page
  if (key) updateSettings({ vision_api_key: key }, "Key saved. It cannot be read back.");
});
$("clear-key").addEventListener("click", () => updateSettings({ clear_vision_api_key: true }, "Key removed."));
$("rebuild").addEventListener("click", rebuild);
$("duplicates-load").addEventListener("click", loadDuplicates);
if (token) signIn();
