// Local descriptors as they travel: int8 codes of unit cell vectors, base64 in JSON.
// Pure functions, so they run in Node for tests too.

// (dim, rows, cols) map of unit cell vectors -> int8 codes, cell after cell, dim each:
// Math.round(x * 127) clamped to +-127 (photosearch.common.local.quantise).
export function quantise(map, dim, rows, cols) {
  const cells = rows * cols;
  const codes = new Int8Array(cells * dim);
  for (let d = 0; d < dim; d++) {
    const plane = d * cells;
    for (let c = 0; c < cells; c++) {
      codes[c * dim + d] = Math.max(-127, Math.min(127, Math.round(map[plane + c] * 127)));
    }
  }
  return codes;
}

export function base64(bytes) {
  const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let text = "";
  for (let i = 0; i < view.length; i += 0x8000) {
    text += String.fromCharCode(...view.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

// Grid neighbours of a cell (the 8 around it).
const NEIGHBOURS = [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]];

// Per cell: 1 - mean cosine with its grid neighbours (0 when alone), on the codes scaled
// back to unit vectors (photosearch.common.local.local_contrast). Flat background scores
// low; print, edges and corners high.
export function localContrast(codes, rows, cols, dim) {
  const cells = rows * cols;
  const unit = new Float64Array(cells * dim);
  for (let c = 0; c < cells; c++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += (codes[c * dim + d] / 127) ** 2;
    norm = Math.max(Math.sqrt(norm), 1e-12);
    for (let d = 0; d < dim; d++) unit[c * dim + d] = codes[c * dim + d] / 127 / norm;
  }
  const contrast = new Float64Array(cells);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const c = y * cols + x;
      let total = 0;
      let count = 0;
      for (const [dy, dx] of NEIGHBOURS) {
        const ny = y + dy;
        const nx = x + dx;
        if (ny < 0 || ny >= rows || nx < 0 || nx >= cols) continue;
        const n = ny * cols + nx;
        let dot = 0;
        for (let d = 0; d < dim; d++) dot += unit[c * dim + d] * unit[n * dim + d];
        total += dot;
        count += 1;
      }
      contrast[c] = count ? 1 - total / count : 0;
    }
  }
  return contrast;
}

// The `budget` cells of highest local contrast (ties: lower index first), in grid order,
// as {codes, cells} (photosearch.common.local.keep_salient): what search keeps of a query
// view anyway, so only those travel. A grid of at most `budget` cells is sent whole
// (cells = [], meaning every cell).
export function keepSalient(codes, rows, cols, dim, budget) {
  const count = rows * cols;
  if (count <= budget) return { codes, cells: [] };
  const contrast = localContrast(codes, rows, cols, dim);
  const order = Array.from({ length: count }, (_, i) => i);
  order.sort((a, b) => contrast[b] - contrast[a] || a - b);
  const cells = order.slice(0, budget).sort((a, b) => a - b);
  const kept = new Int8Array(budget * dim);
  cells.forEach((cell, i) => kept.set(codes.subarray(cell * dim, (cell + 1) * dim), i * dim));
  return { codes: kept, cells };
}
