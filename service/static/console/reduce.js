// The load_digits reduction of service/digit_image.py, step for step (docs/console.md):
// grey (Pillow's L), ink by the border's polarity, then each eighth of the image's area-weighted
// ink sum as a 0..16 count (the 32x32 bitmap's 4x4 blocks), rounded half up. The browser test
// checks that it equals the service's answer for the same PNG.
"use strict";

(function (global) {
  const SIDE = 8;

  // How much of pixel i lies in eighth j of a side of `length` pixels: (8, length).
  function weights(length) {
    const rows = [];
    for (let j = 0; j < SIDE; j++) {
      const lo = (j * length) / SIDE, hi = ((j + 1) * length) / SIDE;
      const row = new Float64Array(length);
      for (let i = Math.floor(lo); i < Math.min(length, Math.ceil(hi)); i++) {
        row[i] = Math.max(0, Math.min(i + 1, hi) - Math.max(i, lo));
      }
      rows.push(row);
    }
    return rows;
  }

  // RGBA ImageData -> 64 integers 0..16, row by row.
  function reduceImageData(image) {
    const { width, height, data } = image;
    const grey = new Float64Array(width * height);
    for (let p = 0, i = 0; p < grey.length; p++, i += 4) {
      const a = data[i + 3];
      // transparency over white (the console's canvas is opaque: a = 255)
      const over = (c) => (a === 255 ? c : Math.round((c * a + 255 * (255 - a)) / 255));
      grey[p] = (over(data[i]) * 19595 + over(data[i + 1]) * 38470 + over(data[i + 2]) * 7471 + 32768) >> 16;
    }
    let border = 0, count = 0;
    for (let x = 0; x < width; x++) { border += grey[x] + grey[(height - 1) * width + x]; count += 2; }
    for (let y = 1; y < height - 1; y++) { border += grey[y * width] + grey[y * width + width - 1]; count += 2; }
    const light = border / count >= 128;
    const wx = weights(width), wy = weights(height);
    // rowSums[y][bx] = sum over x of ink[y][x] * wx[bx][x]
    const rowSums = new Float64Array(height * SIDE);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const g = grey[y * width + x];
        const ink = light ? 255 - g : g;
        if (ink === 0) continue;
        for (let bx = 0; bx < SIDE; bx++) {
          const w = wx[bx][x];
          if (w) rowSums[y * SIDE + bx] += ink * w;
        }
      }
    }
    const area = (height / SIDE) * (width / SIDE);
    const out = new Array(SIDE * SIDE);
    for (let by = 0; by < SIDE; by++) {
      for (let bx = 0; bx < SIDE; bx++) {
        let sum = 0;
        for (let y = 0; y < height; y++) sum += wy[by][y] * rowSums[y * SIDE + bx];
        const v = Math.floor((sum * 16) / (area * 255) + 0.5);
        out[by * SIDE + bx] = Math.min(16, Math.max(0, v));
      }
    }
    return out;
  }

  global.DigitReduce = { reduceImageData, weights };
})(window);
