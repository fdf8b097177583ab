// Admin page: the review queue (contributions approved or rejected, each photo shown
// with the catalog items it looks most like) and the catalog view (find, edit, delete).
import { el } from "/static/js/api.js";
import { errorText, t } from "/static/js/i18n.js";

const $ = (id) => document.getElementById(id);

// A destructive button asks once more before it acts (`key`: its label, `key`_confirm).
function confirmButton(key, action) {
  const button = el("button", { type: "button", class: "danger", text: t(key), "data-action": key });
  button.addEventListener("click", async () => {
    if (button.dataset.armed !== "true") {
      button.dataset.armed = "true";
      button.textContent = t(`${key}_confirm`);
      return;
    }
    button.disabled = true;
    await action();
  });
  return button;
}

function button(key, action, attrs = {}) {
  const node = el("button", { type: "button", text: t(key), "data-action": key, ...attrs });
  node.addEventListener("click", async () => {
    node.disabled = true;
    await action();
  });
  return node;
}

function describe(item) {
  const facts = [item.series, item.maker, item.year, item.variant].filter(Boolean).join(", ");
  return facts ? `${item.name} (${facts})` : item.name;
}

function neighbours(pending) {
  if (pending.nearest_unavailable) {
    return el("p", { class: "note", text: t("review.nearest_unknown", { reason: pending.nearest_unavailable }) });
  }
  if (!pending.nearest.length) return el("p", { class: "note", text: t("review.nothing_like_it") });
  return el("ul", { class: "nearest" }, ...pending.nearest.map((n) =>
    el("li", { "data-item-id": n.item.id },
      el("img", { src: n.thumbnail_url, alt: "", width: "64", height: "64", loading: "lazy" }),
      el("span", { text: `${describe(n.item)}: ${n.score.toFixed(3)}` }))));
}

export function reviewQueue(call) {
  const message = (text) => { $("review-message").textContent = text; };

  async function act(promise, done) {
    try {
      await promise;
      message(done);
    } catch (error) {
      message(t("review.not_done", { reason: errorText(error) }));
    }
    await load();
  }

  function entry(c) {
    const item = c.item;
    const head = el("p", {},
      el("strong", { text: describe(item) }),
      el("span", { text: ` · ${t(item.pending ? "review.new_item" : "review.new_photos")}` }),
      el("span", { class: "note", text: ` · ${t("review.from", { who: item.added_by || "?" })}` }));
    const actions = item.pending ? el("div", { class: "row" },
      button("review.approve_item", () => act(call(`/api/v1/admin/review/items/${item.id}/approve`, { method: "POST" }),
        t("review.approved", { name: item.name })), { class: "primary" }),
      confirmButton("review.reject_item", () => act(call(`/api/v1/admin/items/${item.id}`, { method: "DELETE" }),
        t("review.rejected", { name: item.name })))) : el("div");
    const photos = c.pending_images.map((p) => el("div", { class: "pending-photo", "data-image-id": p.image.id },
      el("img", { src: p.image.thumbnail_url, alt: t("review.photo_alt"), width: "128", height: "128" }),
      el("div", {}, el("p", { text: t("review.looks_like") }), neighbours(p),
        el("div", { class: "row" },
          button("review.approve_photo", () => act(call(`/api/v1/admin/review/images/${p.image.id}/approve`, { method: "POST" }),
            t("review.photo_approved"))),
          confirmButton("review.reject_photo", () => act(call(`/api/v1/admin/images/${p.image.id}`, { method: "DELETE" }),
            t("review.photo_rejected")))))));
    return el("li", { class: "contribution", "data-item-id": item.id }, head, actions, ...photos);
  }

  async function load() {
    try {
      const queue = await call("/api/v1/admin/review");
      const shown = queue.contributions.length;
      $("review-summary").textContent = !queue.total ? t("review.empty")
        : t(queue.total > shown ? "review.waiting_some" : "review.waiting", { count: queue.total, shown });
      $("review-list").replaceChildren(...queue.contributions.map(entry));
    } catch (error) {
      $("review-summary").textContent = t("review.unavailable", { reason: errorText(error) });
    }
  }

  $("review-refresh").addEventListener("click", load);
  return load;
}

export function catalogView(call) {
  let nextPage = null;
  const message = (text) => { $("catalog-message").textContent = text; };

  function editor(item, row) {
    const input = (name, value, attrs = {}) => el("label", {}, `${t(`fields.${name}`)} `,
      el("input", { name, value: value ?? "", maxlength: "200", ...attrs }));
    const form = el("form", { class: "edit" },
      input("name", item.name, { required: "" }), input("series", item.series), input("maker", item.maker),
      input("year", item.year || "", { type: "number", min: "0", max: "9999" }), input("variant", item.variant),
      el("button", { type: "submit", class: "primary", text: t("catalog.save") }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = Object.fromEntries(new FormData(form));
      const change = { ...fields, year: Number(fields.year || 0) };
      try {
        const saved = await call(`/api/v1/admin/items/${item.id}`, { method: "PATCH", json: change });
        message(t("catalog.saved", { name: saved.name }));
        row.replaceWith(itemRow(saved));
      } catch (error) {
        message(t("catalog.not_saved", { reason: errorText(error) }));
      }
    });
    return form;
  }

  async function photos(item, box) {
    try {
      const { images } = await call(`/api/v1/admin/items/${item.id}/images`);
      box.replaceChildren(...(images.length ? images.map((image) => el("figure", { "data-image-id": image.id },
        el("img", { src: image.thumbnail_url, alt: "", width: "96", height: "96", loading: "lazy" }),
        el("figcaption", { text: t(image.pending ? "catalog.role_pending" : "catalog.role", { role: t(`catalog.roles.${image.role}`) }) }),
        confirmButton("catalog.delete_photo", async () => {
          try {
            await call(`/api/v1/admin/images/${image.id}`, { method: "DELETE" });
            message(t("catalog.photo_deleted"));
          } catch (error) {
            message(t("catalog.not_deleted", { reason: errorText(error) }));
          }
          await photos(item, box);
        }))) : [el("p", { class: "note", text: t("catalog.no_photos") })]));
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", text: error.message }));
    }
  }

  function itemRow(item) {
    const box = el("div", { class: "photos" });
    const row = el("li", { "data-item-id": item.id },
      el("strong", { text: describe(item) }),
      el("span", { class: "note", text: ` · ${t("catalog.photos_count", { count: item.image_count })}` +
        (item.pending ? ` · ${t("catalog.pending")}` : "") +
        (item.added_by ? ` · ${t("review.from", { who: item.added_by })}` : "") }));
    row.append(el("div", { class: "row" },
      el("button", { type: "button", text: t("catalog.edit"), "data-action": "catalog.edit", onclick: () => row.append(editor(item, row)) }),
      el("button", { type: "button", text: t("catalog.photos"), "data-action": "catalog.photos", onclick: () => photos(item, box) }),
      confirmButton("catalog.delete_item", async () => {
        try {
          await call(`/api/v1/admin/items/${item.id}`, { method: "DELETE" });
          message(t("catalog.deleted", { name: item.name }));
          row.remove();
        } catch (error) {
          message(t("catalog.not_deleted", { reason: errorText(error) }));
        }
      })), box);
    return row;
  }

  let asked = 0; // an answer to an older search never replaces a newer one's

  async function find(more = false) {
    const query = $("catalog-query").value.trim();
    const params = new URLSearchParams({ query, page_size: "20" });
    if (more && nextPage) params.set("page_token", nextPage);
    const mine = ++asked;
    try {
      const page = await call(`/api/v1/admin/items?${params}`);
      if (mine !== asked) return;
      const rows = page.items.map(itemRow);
      if (more) $("catalog-items").append(...rows);
      else $("catalog-items").replaceChildren(...rows);
      $("catalog-items").dataset.query = query; // what the list shows (tests wait for it)
      nextPage = page.next_page_token;
      $("catalog-more").hidden = !nextPage;
      message(page.items.length || more ? "" : t("catalog.none"));
    } catch (error) {
      message(t("catalog.search_failed", { reason: errorText(error) }));
    }
  }

  $("catalog-form").addEventListener("submit", (event) => {
    event.preventDefault();
    find();
  });
  $("catalog-more").addEventListener("click", () => find(true));
  return find;
}
