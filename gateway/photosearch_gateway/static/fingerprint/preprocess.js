// The preprocessing of preprocess.json, implemented exactly as the server's embedder does it
// (photosearch_embedder.preprocess): decode with EXIF orientation, flatten alpha onto the
// background colour, resize the short side with Pillow's antialiased bicubic (a = -0.5, 8-bit
// fixed point, horizontal pass then vertical), centre crop, scale, normalise, NCHW float32.
// The local pass (preprocess.json's `local`) uses the same resize and normalisation on the
// whole photo, uncropped, optionally turned first.
// Pure functions except decodeToRGB, so they run in Node for tests too.

const PRECISION_BITS = 32 - 8 - 2; // Pillow's resample.c
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);
const SUPPORT = 2.0; // bicubic

function bicubic(x, a) {
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel, the first input
// pixel and the fixed-point weights.
export function coefficients(inSize, outSize, a = -0.5) {
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = bicubic((x + xmin - center + 0.5) * ss, a);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function clip8(v) {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

// One pass over 3-channel interleaved 8-bit pixels, along x (horizontal) or y.
function resamplePass(src, width, height, outSize, horizontal, a) {
  const inSize = horizontal ? width : height;
  const { bounds, weights, ksize } = coefficients(inSize, outSize, a);
  const outW = horizontal ? outSize : width;
  const outH = horizontal ? height : outSize;
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const i = horizontal ? x : y;
      const min = bounds[i * 2];
      const count = bounds[i * 2 + 1];
      const base = i * ksize;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let j = 0; j < count; j++) {
        const w = weights[base + j];
        const p = horizontal ? (y * width + min + j) * 3 : ((min + j) * width + x) * 3;
        r += src[p] * w;
        g += src[p + 1] * w;
        b += src[p + 2] * w;
      }
      const o = (y * outW + x) * 3;
      out[o] = clip8(r);
      out[o + 1] = clip8(g);
      out[o + 2] = clip8(b);
    }
  }
  return out;
}

// Image.resize((outW, outH), BICUBIC, reducing_gap=None) on 8-bit RGB.
export function resizeBicubic(rgb, width, height, outW, outH, a = -0.5) {
  let pixels = rgb;
  let w = width;
  if (outW !== width) {
    pixels = resamplePass(pixels, w, height, outW, true, a);
    w = outW;
  }
  if (outH !== height) pixels = resamplePass(pixels, w, height, outH, false, a);
  return pixels;
}

export function targetSize(width, height, shortSide) {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.floor((long * shortSide) / short);
  return width <= height ? [shortSide, newLong] : [newLong, shortSide];
}

// 8-bit RGB (any size) -> Float32Array in the spec's layout, ready for the model.
export function toTensor(rgb, width, height, spec) {
  const [w, h] = targetSize(width, height, spec.resize.short_side);
  const resized = w === width && h === height
    ? rgb
    : resizeBicubic(rgb, width, height, w, h, spec.resize.bicubic_a ?? -0.5);
  const cw = spec.center_crop.width;
  const ch = spec.center_crop.height;
  const left = Math.floor((w - cw) / 2);
  const top = Math.floor((h - ch) / 2);
  return { data: normalise(resized, w, left, top, cw, ch, spec), dims: [1, 3, ch, cw] };
}

// Size of the whole photo for the local pass (preprocess.json's `local`): long side
// `long_side`, short side scaled and rounded to a multiple of `multiple` (no crop).
export function localSize(width, height, local) {
  if (local.square) return [local.long_side, local.long_side];
  const scale = local.long_side / Math.max(width, height);
  const m = local.multiple;
  const side = (value) => Math.max(m, Math.floor((value * scale) / m + 0.5) * m);
  return width >= height ? [local.long_side, side(height)] : [side(width), local.long_side];
}

// The whole photo (8-bit RGB) -> the local graph's input: same resize, scale and
// normalisation as the fingerprint, no crop.
export function toLocalTensor(rgb, width, height, spec) {
  const [w, h] = localSize(width, height, spec.local);
  const resized = w === width && h === height
    ? rgb
    : resizeBicubic(rgb, width, height, w, h, spec.resize.bicubic_a ?? -0.5);
  return { data: normalise(resized, w, 0, 0, w, h, spec), dims: [1, 3, h, w] };
}

// 8-bit RGB turned clockwise by 90, 180 or 270 degrees (exact, like Pillow's transpose).
export function rotateClockwise(rgb, width, height, degrees) {
  if (degrees === 0) return { rgb, width, height };
  const quarter = degrees === 90 || degrees === 270;
  const outW = quarter ? height : width;
  const outH = quarter ? width : height;
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let sx;
      let sy;
      if (degrees === 90) [sx, sy] = [y, height - 1 - x];
      else if (degrees === 270) [sx, sy] = [width - 1 - y, x];
      else [sx, sy] = [width - 1 - x, height - 1 - y];
      const p = (sy * width + sx) * 3;
      const o = (y * outW + x) * 3;
      out[o] = rgb[p];
      out[o + 1] = rgb[p + 1];
      out[o + 2] = rgb[p + 2];
    }
  }
  return { rgb: out, width: outW, height: outH };
}

// The window (left, top, cw x ch) of 8-bit RGB `w` pixels wide -> scaled, normalised
// NCHW float32 (float32 arithmetic at each step, as numpy does it on the server).
function normalise(resized, w, left, top, cw, ch, spec) {
  const f = Math.fround;
  const scale = f(spec.scale);
  const mean = spec.mean.map(f);
  const std = spec.std.map(f);
  const plane = cw * ch;
  const out = new Float32Array(3 * plane);
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const p = ((top + y) * w + (left + x)) * 3;
      for (let c = 0; c < 3; c++) {
        out[c * plane + y * cw + x] = f(f(f(resized[p + c] * scale) - mean[c]) / std[c]);
      }
    }
  }
  return out;
}

// RGBA (not premultiplied) -> RGB flattened onto `background` the way Pillow's
// paste(rgba, mask=alpha) blends: (bg * (255 - a) + c * a + 128) rounded by (t + (t >> 8)) >> 8.
export function flattenAlpha(rgba, width, height, background) {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4, o += 3) {
    const a = rgba[i + 3];
    for (let c = 0; c < 3; c++) {
      if (a === 255) out[o + c] = rgba[i + c];
      else {
        const t = background[c] * (255 - a) + rgba[i + c] * a + 128;
        out[o + c] = (t + (t >> 8)) >> 8;
      }
    }
  }
  return out;
}

// A photo file -> oriented 8-bit RGB with transparency flattened (browser only).
export async function decodeToRGB(blob, spec) {
  const bitmap = await createImageBitmap(blob, {
    imageOrientation: "from-image", // apply EXIF orientation, like the server
    premultiplyAlpha: "none",
    colorSpaceConversion: "none", // raw decoded values: the server ignores ICC profiles too
  });
  const { width, height } = bitmap;
  const canvas = typeof OffscreenCanvas !== "undefined"
    ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement("canvas"), { width, height });
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  return { rgb: flattenAlpha(rgba, width, height, spec.alpha_background), width, height };
}

// A frame of a video (or any canvas image source) -> {rgb, width, height}, scaled so its
// long side is at most `longSide`: what a live scan fingerprints (browser only).
export function photoFromFrame(source, sourceWidth, sourceHeight, spec, longSide) {
  const scale = Math.min(1, longSide / Math.max(sourceWidth, sourceHeight));
  const width = Math.max(1, Math.round(sourceWidth * scale));
  const height = Math.max(1, Math.round(sourceHeight * scale));
  const canvas = typeof OffscreenCanvas !== "undefined"
    ? new OffscreenCanvas(width, height)
    : Object.assign(document.createElement("canvas"), { width, height });
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  return { rgb: flattenAlpha(rgba, width, height, spec.alpha_background), width, height, canvas };
}
