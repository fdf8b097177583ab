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
