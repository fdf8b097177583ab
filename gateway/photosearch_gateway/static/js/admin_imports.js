// Admin page: import jobs (an S3 prefix or a CSV of photo URLs, run inside catalog), each
// with its progress bar and the reasons its failed photos failed.
import { el } from "/static/js/api.js";
import { errorText, t } from "/static/js/i18n.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1500;

function jobRow(job) {
  const failures = job.failures.length ? el("details", {},
    el("summary", { text: t("imports.failures", { count: job.failed }) }),
    el("ul", {}, ...job.failures.map((f) => el("li", { text: `${f.location}: ${f.reason}` })))) : "";
  return el("li", { "data-import-id": job.id, "data-state": job.state },
    el("strong", { text: job.source }),
    el("progress", { max: String(job.total || 1), value: String(job.done + job.failed) }),
    el("span", { class: "note", text: t(job.state === "done" ? "imports.finished" : "imports.running",
      { done: job.done, total: job.total, failed: job.failed }) }),
    failures);
}

export function importJobs(call) {
  let timer = null;

  async function load() {
    clearTimeout(timer);
    try {
      const { jobs } = await call("/api/v1/admin/imports");
      $("imports").replaceChildren(...jobs.map(jobRow));
      if (jobs.some((job) => job.state === "running")) timer = setTimeout(load, POLL_MS);
    } catch (error) {
      $("import-message").textContent = t("imports.unavailable", { reason: errorText(error) });
    }
  }

  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData();
    const source = $("import-source").value.trim();
    const file = $("import-csv").files[0];
    if (source) form.append("source", source);
    if (file) form.append("csv", file);
    form.append("update_existing", $("import-update").checked ? "true" : "false");
    try {
      const job = await call("/api/v1/admin/imports", { method: "POST", form });
      $("import-message").textContent = t("imports.started", { count: job.total });
      $("import-form").reset();
    } catch (error) {
      $("import-message").textContent = t("imports.refused", { reason: errorText(error) });
    }
    await load();
  });
  return load;
}
