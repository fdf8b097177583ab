// "My collection": the items a user confirmed, kept on this device only (IndexedDB), with a
// count per item and a CSV export. Nothing of it is sent to the server.
const DB_NAME = "photosearch";
const STORE = "collection";
export const CSV_COLUMNS = ["name", "series", "maker", "year", "variant", "count", "id"];

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

// One transaction on the store; `work(store)` returns the request whose result is wanted.
async function withStore(mode, work) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request?.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

export async function entries() {
  const all = await withStore("readonly", (store) => store.getAll());
  return all.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

// Adds one copy of `item` (a search answer's item), or `delta` copies; at 0 it leaves.
export async function change(item, delta = 1) {
  await withStore("readwrite", (store) => {
    const read = store.get(item.id);
    read.onsuccess = () => {
      const count = (read.result?.count ?? 0) + delta;
      if (count <= 0) {
        store.delete(item.id);
        return;
      }
      const { id, name, series, maker, year, variant } = { ...read.result, ...item };
      store.put({ id, name, series: series ?? "", maker: maker ?? "", year: year ?? null,
        variant: variant ?? "", count });
    };
    return read;
  });
}

export async function remove(id) {
  await withStore("readwrite", (store) => store.delete(id));
}

// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled.
function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(rows) {
  const lines = [CSV_COLUMNS, ...rows.map((row) => CSV_COLUMNS.map((column) => row[column]))];
  return lines.map((line) => line.map(csvField).join(",")).join("\r\n") + "\r\n";
}
