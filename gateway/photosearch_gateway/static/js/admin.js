// Admin page: settings (write-only key), index status, rebuild gate, models, the review
// queue and the catalog (admin_catalog.js), imports (admin_imports.js), duplicates.
import { catalogView, reviewQueue } from "/static/js/admin_catalog.js";
import { importJobs } from "/static/js/admin_imports.js";
import { api, el } from "/static/js/api.js";
import { errorText, setup as setupLanguage, t } from "/static/js/i18n.js";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("photosearch-admin-token") || "";
let timer = null;

await setupLanguage(); // before any word is shown or any button can be pressed
const call = (path, options = {}) => api(path, { ...options, token });
const loadReview = reviewQueue(call);
const findItems = catalogView(call);
const loadImports = importJobs(call);

function showSettings(s) {
  $("photo-search").checked = s.photo_search_enabled;
  $("web-fallback").checked = s.web_fallback_enabled;
  $("key-state").textContent = t(s.vision_api_key_set ? "admin.key_set" : "admin.key_not_set");
  $("clear-key").disabled = !s.vision_api_key_set;
}

async function updateSettings(change, message) {
  try {
    showSettings(await call("/api/v1/admin/settings", { method: "PUT", json: change }));
    $("settings-message").textContent = message;
  } catch (error) {
    $("settings-message").textContent = t("admin.not_saved", { reason: errorText(error) });
  }
}

function showIndex(s) {
  $("index-progress").value = s.progress;
  $("index-summary").textContent = t("admin.index_summary", {
    model: s.model_id, embedded: s.embedded, total: s.catalog_images, pending: s.pending,
    failed: s.failed, queued: s.queue_depth,
  }) + (s.rebuild_in_progress ? ` ${t("admin.rebuild_running")}` : "");
  const rebuild = $("rebuild");
  rebuild.disabled = !s.rebuild.allowed;
  $("rebuild-reason").textContent = s.rebuild.allowed ? "" : s.rebuild.reason;
  rebuild.title = s.rebuild.reason || "";
  const note = [s.embedder.reachable ? "" : t("admin.embedder_unreachable"), s.embedder.model_note || ""]
    .filter(Boolean).join(" ");
  $("embedder-note").hidden = !note;
  $("embedder-note").textContent = note;
  $("workers").replaceChildren(...(s.workers.length
    ? s.workers.map((w) => el("tr", {},
        el("td", { text: w.worker_id }), el("td", { text: w.device }),
        el("td", { text: w.runtime + (w.runtime_rate ? ` (${w.runtime_rate} img/s)` : "") }),
        el("td", { text: w.model_id }), el("td", { text: t(w.model_loaded ? "admin.yes" : "admin.no") })))
    : [el("tr", {}, el("td", { colspan: "5", text: t("admin.no_workers") }))]));
  showRuntimes(s.embedder);
  $("failures-box").hidden = s.failures.length === 0;
  $("failures").replaceChildren(...s.failures.map((f) => el("li", { text: `${f.image_id}: ${f.reason}` })));
}

// The engines the embedder timed on its host, the chosen one first per graph.
function showRuntimes(embedder) {
  const trials = embedder.runtime_trials || [];
  $("runtime-box").hidden = trials.length === 0;
  $("runtime-summary").textContent = t(embedder.runtime_cached ? "admin.runtimes_cached" : "admin.runtimes",
    { setting: embedder.runtime_setting });
  const ordered = [...trials].sort((a, b) => a.graph.localeCompare(b.graph) || b.chosen - a.chosen || b.rate - a.rate);
  $("runtime-trials").replaceChildren(...ordered.map((trial) => el("tr", { class: trial.chosen ? "chosen" : "" },
    el("td", { text: trial.graph }), el("td", { text: trial.engine }),
    el("td", { text: trial.rate ? String(trial.rate) : "" }),
    el("td", { text: trial.min_cosine === null ? "" : trial.min_cosine.toFixed(5) }),
    el("td", { text: trial.chosen ? t("admin.serving") : (trial.problem || t("admin.slower")) }))));
}

function showModels(list) {
  $("models").replaceChildren(...list.models.map((m) => el("tr", {},
    el("td", { text: m.model_id + (m.browser_ready ? "" : ` ${t("admin.not_exported")}`) }),
    el("td", { text: String(m.dim) }),
    el("td", { text: String(m.embedded) }),
    el("td", {}, m.active
      ? el("strong", { text: t("admin.active") })
      : el("button", { type: "button", text: t("admin.switch"), onclick: () => switchModel(m.model_id) })))));
}

async function switchModel(modelId) {
  try {
    await call("/api/v1/admin/models/active", { method: "PUT", json: { model_id: modelId } });
    $("model-message").textContent = t("admin.switched", { model: modelId });
  } catch (error) {
    $("model-message").textContent = t("admin.not_switched", { reason: errorText(error) });
  }
  await refresh();
}

async function rebuild() {
  $("rebuild").disabled = true;
  try {
    const r = await call("/api/v1/admin/index/rebuild", {
      method: "POST", json: { retry_failed: $("retry-failed").checked },
    });
    $("rebuild-message").textContent = t(r.in_progress ? "admin.queued_so_far" : "admin.queued",
      { count: r.queued, model: r.model_id });
  } catch (error) {
    $("rebuild-message").textContent = t("admin.rebuild_refused", { reason: errorText(error) });
  }
  await refresh();
}

function itemName(ref) {
  return ref.item ? ref.item.name : ref.item_id;
}

// What found a pair, in words: the fingerprints' similarity, the hashes' distance or the
// aligned pixels' correlation, or the fingerprints and one of those.
function evidence(p) {
  const parts = [];
  if (p.pixel_similarity !== null) {
    const how = t(p.hash_view === "as is" ? "admin.pixels_as_is" : "admin.pixels_aligned");
    parts.push(t("admin.pixel_evidence", { similarity: p.pixel_similarity.toFixed(3), how }));
  } else if (p.hash_distance !== null) {
    parts.push(t("admin.copy_evidence", { bits: p.hash_distance, view: p.hash_view }));
  }
  if (p.score !== null) parts.push(t("admin.fingerprint_evidence", { score: p.score.toFixed(3) }));
  return parts.join(" · ");
}

function hashes(p) {
  if (!p.a.copy_hash) return [];
  const quality = (ref) => (ref.hash_quality < 50 ? ` ${t("admin.weak_hash")}` : "");
  return [el("code", { class: "hash", text: `${p.a.copy_hash}${quality(p.a)}` }),
    el("code", { class: "hash", text: `${p.b.copy_hash}${quality(p.b)}` })];
}

async function loadDuplicates() {
  $("duplicates-summary").textContent = t("admin.comparing");
  try {
    const r = await call("/api/v1/admin/duplicates?limit=50");
    $("duplicates-summary").textContent = t(r.exact ? "admin.report_exact" : "admin.report_nearest", {
      images: r.images, threshold: r.threshold.toFixed(2), hashed: r.hashed_images, bits: r.hash_max_distance,
    }) + (r.unhashed_images ? ` ${t("admin.still_hashing", { count: r.unhashed_images })}` : "")
      + (r.unchecked_copy_candidates ? ` ${t("admin.unchecked", { count: r.unchecked_copy_candidates })}` : "");
    $("duplicates").replaceChildren(...r.duplicates.map((p) => el("li", { "data-signals": p.signals.join(" ") },
      el("img", { src: p.a.thumbnail_url, alt: "" }), el("img", { src: p.b.thumbnail_url, alt: "" }),
      el("span", { text: `${itemName(p.a)} ↔ ${itemName(p.b)}: ${evidence(p)}` }), ...hashes(p))));
    $("confusables").replaceChildren(...r.confusables.map((c) => el("tr", {},
      el("td", { text: c.item ? c.item.name : c.item_id }),
      el("td", { text: c.nearest ? c.nearest.name : c.nearest_item_id }),
      el("td", { text: c.margin.toFixed(3) }))));
  } catch (error) {
    $("duplicates-summary").textContent = t("admin.report_failed", { reason: errorText(error) });
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
    if (error.status === 401 || error.status === 403) return signOut(t("admin.token_refused"));
    $("index-summary").textContent = t("admin.status_unavailable", { reason: errorText(error) });
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
  await Promise.all([loadReview(), findItems(), loadImports()]);
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("photosearch-admin-token", token);
  signIn();
});
$("photo-search").addEventListener("change", (e) =>
  updateSettings({ photo_search_enabled: e.target.checked }, t("admin.saved")));
$("web-fallback").addEventListener("change", (e) =>
  updateSettings({ web_fallback_enabled: e.target.checked }, t("admin.saved")));
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("vision-key").value.trim();
  $("vision-key").value = ""; // the key never stays in the page
  if (key) updateSettings({ vision_api_key: key }, t("admin.key_saved"));
});
$("clear-key").addEventListener("click", () => updateSettings({ clear_vision_api_key: true }, t("admin.key_removed")));
$("rebuild").addEventListener("click", rebuild);
$("duplicates-load").addEventListener("click", loadDuplicates);
if (token) signIn();
