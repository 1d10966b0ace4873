// Line charts in SVG with axes, ticks, axis titles and a legend (docs/console.md). Plain JS,
// no dependency: Chart.draw(svg, {series, xMax, xTitle, yTitle, yMin, yMax}) draws into an
// <svg> whose viewBox is 0 0 400 200; each series is {name, color, points: [[x, y], ...]}.
"use strict";

const Chart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 400, H = 200;
  const BOX = { left: 46, right: 392, top: 22, bottom: 166 }; // the plotting area

  const node = (tag, attrs = {}, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };

  // About `count` round ticks (1, 2 or 5 times a power of ten) covering [lo, hi].
  function ticks(lo, hi, count = 5) {
    const span = hi - lo || 1;
    const raw = span / count, power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
    return out;
  }

  const label = (v) => (Math.abs(v) >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(3))));

  function draw(svg, { series, xMax, xTitle, yTitle, yMin, yMax }) {
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.replaceChildren();
    const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
    let lo = yMin !== undefined ? yMin : Math.min(...ys, Infinity);
    let hi = yMax !== undefined ? yMax : Math.max(...ys, -Infinity);
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) { lo = 0; hi = 1; }
    if (hi === lo) { hi += 1; lo -= 1; }
    const xs = ticks(0, Math.max(1, xMax)), yt = ticks(lo, hi, 4);
    const X = (x) => BOX.left + ((BOX.right - BOX.left) * x) / Math.max(1, xMax);
    const Y = (y) => BOX.bottom - ((BOX.bottom - BOX.top) * (y - lo)) / (hi - lo);
    const axes = node("g", { class: "axes" });
    for (const t of yt) {
      axes.append(node("line", { x1: BOX.left, x2: BOX.right, y1: Y(t), y2: Y(t), class: "grid-line" }));
      axes.append(node("text", { x: BOX.left - 4, y: Y(t) + 3, "text-anchor": "end", class: "tick y" }, label(t)));
    }
    for (const t of xs) {
      axes.append(node("line", { x1: X(t), x2: X(t), y1: BOX.bottom, y2: BOX.bottom + 3, class: "axis-line" }));
      axes.append(node("text", { x: X(t), y: BOX.bottom + 13, "text-anchor": "middle", class: "tick x" }, label(t)));
    }
    axes.append(node("line", { x1: BOX.left, x2: BOX.right, y1: BOX.bottom, y2: BOX.bottom, class: "axis-line" }));
    axes.append(node("line", { x1: BOX.left, x2: BOX.left, y1: BOX.top, y2: BOX.bottom, class: "axis-line" }));
    axes.append(node("text", { x: (BOX.left + BOX.right) / 2, y: H - 4, "text-anchor": "middle", class: "title x" }, xTitle));
    axes.append(node("text", { x: 4, y: 12, class: "title y" }, yTitle));
    svg.append(axes);
    const clamp = (y) => Math.min(BOX.bottom, Math.max(BOX.top, Y(y)));
    let legendX = BOX.right;
    for (const s of [...series].reverse()) {
      const line = node("polyline", { stroke: s.color, class: "series", "data-name": s.name,
        points: s.points.filter((p) => Number.isFinite(p[1])).map(([x, y]) => `${X(x).toFixed(1)},${clamp(y).toFixed(1)}`).join(" ") });
      line.dataset.points = s.points.length;
      svg.append(line);
      const text = node("text", { x: legendX, y: 12, "text-anchor": "end", class: "legend" }, s.name);
      const swatch = legendX - 5.5 * s.name.length - 10;
      svg.append(node("line", { x1: swatch, x2: swatch + 7, y1: 9, y2: 9, stroke: s.color, "stroke-width": 3 }), text);
      legendX = swatch - 10;
    }
    return svg;
  }

  return { draw, ticks, node };
})();
