// Admin page: the review queue (contributions approved or rejected, each photo shown
// with the catalog items it looks most like) and the catalog view (find, edit, delete).
import { el } from "/static/js/api.js";

const $ = (id) => document.getElementById(id);

// A destructive button asks once more before it acts.
function confirmButton(label, action) {
  const button = el("button", { type: "button", class: "danger", text: label });
  button.addEventListener("click", async () => {
    if (button.dataset.armed !== "true") {
      button.dataset.armed = "true";
      button.textContent = `Really ${label.toLowerCase()}?`;
      return;
    }
    button.disabled = true;
    await action();
  });
  return button;
}

function button(label, action, attrs = {}) {
  const node = el("button", { type: "button", text: label, ...attrs });
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
    return el("p", { class: "note", text: `Nearest items unknown: ${pending.nearest_unavailable}` });
  }
  if (!pending.nearest.length) return el("p", { class: "note", text: "Nothing like it in the catalog." });
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
      message(`Not done: ${error.message}`);
    }
    await load();
  }

  function entry(c) {
    const item = c.item;
    const head = el("p", {},
      el("strong", { text: describe(item) }),
      el("span", { text: item.pending ? " · new item" : " · new photos of an item in the catalog" }),
      el("span", { class: "note", text: ` · from ${item.added_by || "unknown"}` }));
    const actions = item.pending ? el("div", { class: "row" },
      button("Approve item", () => act(call(`/api/v1/admin/review/items/${item.id}/approve`, { method: "POST" }),
        `Approved "${item.name}".`), { class: "primary" }),
      confirmButton("Reject item", () => act(call(`/api/v1/admin/items/${item.id}`, { method: "DELETE" }),
        `Rejected "${item.name}".`))) : el("div");
    const photos = c.pending_images.map((p) => el("div", { class: "pending-photo", "data-image-id": p.image.id },
      el("img", { src: p.image.thumbnail_url, alt: "The contributed photo", width: "128", height: "128" }),
      el("div", {}, el("p", { text: "Looks most like:" }), neighbours(p),
        el("div", { class: "row" },
          button("Approve photo", () => act(call(`/api/v1/admin/review/images/${p.image.id}/approve`, { method: "POST" }),
            "Photo approved.")),
          confirmButton("Reject photo", () => act(call(`/api/v1/admin/images/${p.image.id}`, { method: "DELETE" }),
            "Photo rejected."))))));
    return el("li", { class: "contribution", "data-item-id": item.id }, head, actions, ...photos);
  }

  async function load() {
    try {
      const queue = await call("/api/v1/admin/review");
      $("review-summary").textContent = queue.total
        ? `${queue.total} waiting for review${queue.total > queue.contributions.length ? ` (oldest ${queue.contributions.length} shown)` : ""}.`
        : "Nothing waits for review.";
      $("review-list").replaceChildren(...queue.contributions.map(entry));
    } catch (error) {
      $("review-summary").textContent = `The queue is unavailable: ${error.message}`;
    }
  }

  $("review-refresh").addEventListener("click", load);
  return load;
}

export function catalogView(call) {
  let nextPage = null;
  const message = (text) => { $("catalog-message").textContent = text; };

  function editor(item, row) {
    const input = (name, value, attrs = {}) => el("label", {}, `${name} `,
      el("input", { name: name.toLowerCase(), value: value ?? "", maxlength: "200", ...attrs }));
    const form = el("form", { class: "edit" },
      input("Name", item.name, { required: "" }), input("Series", item.series), input("Maker", item.maker),
      input("Year", item.year || "", { type: "number", min: "0", max: "9999" }), input("Variant", item.variant),
      el("button", { type: "submit", class: "primary", text: "Save" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const fields = Object.fromEntries(new FormData(form));
      const change = { ...fields, year: Number(fields.year || 0) };
      try {
        const saved = await call(`/api/v1/admin/items/${item.id}`, { method: "PATCH", json: change });
        message(`Saved "${saved.name}".`);
        row.replaceWith(itemRow(saved));
      } catch (error) {
        message(`Not saved: ${error.message}`);
      }
    });
    return form;
  }

  async function photos(item, box) {
    try {
      const { images } = await call(`/api/v1/admin/items/${item.id}/images`);
      box.replaceChildren(...(images.length ? images.map((image) => el("figure", { "data-image-id": image.id },
        el("img", { src: image.thumbnail_url, alt: "", width: "96", height: "96", loading: "lazy" }),
        el("figcaption", { text: `${image.role}${image.pending ? ", pending" : ""}` }),
        confirmButton("Delete photo", async () => {
          try {
            await call(`/api/v1/admin/images/${image.id}`, { method: "DELETE" });
            message("Photo deleted.");
          } catch (error) {
            message(`Not deleted: ${error.message}`);
          }
          await photos(item, box);
        }))) : [el("p", { class: "note", text: "No photos." })]));
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", text: error.message }));
    }
  }

  function itemRow(item) {
    const box = el("div", { class: "photos" });
    const row = el("li", { "data-item-id": item.id },
      el("strong", { text: describe(item) }),
      el("span", { class: "note", text: ` · ${item.image_count} photos${item.pending ? " · pending review" : ""}` +
        (item.added_by ? ` · from ${item.added_by}` : "") }));
    row.append(el("div", { class: "row" },
      el("button", { type: "button", text: "Edit", onclick: () => row.append(editor(item, row)) }),
      el("button", { type: "button", text: "Photos", onclick: () => photos(item, box) }),
      confirmButton("Delete item", async () => {
        try {
          await call(`/api/v1/admin/items/${item.id}`, { method: "DELETE" });
          message(`Deleted "${item.name}".`);
          row.remove();
        } catch (error) {
          message(`Not deleted: ${error.message}`);
        }
      })), box);
    return row;
  }

  async function find(more = false) {
    const params = new URLSearchParams({ query: $("catalog-query").value.trim(), page_size: "20" });
    if (more && nextPage) params.set("page_token", nextPage);
    try {
      const page = await call(`/api/v1/admin/items?${params}`);
      const rows = page.items.map(itemRow);
      if (more) $("catalog-items").append(...rows);
      else $("catalog-items").replaceChildren(...rows);
      nextPage = page.next_page_token;
      $("catalog-more").hidden = !nextPage;
      message(page.items.length || more ? "" : "No item by that name.");
    } catch (error) {
      message(`Search failed: ${error.message}`);
    }
  }

  $("catalog-form").addEventListener("submit", (event) => {
    event.preventDefault();
    find();
  });
  $("catalog-more").addEventListener("click", () => find(true));
  return find;
}
