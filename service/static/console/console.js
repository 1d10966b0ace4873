// The console: Draw, Models, Train (docs/console.md). Plain JS, no build step; every API call
// goes through api(), which carries the key typed into the header (kept in sessionStorage).
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, { dataset = {}, ...props } = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
};
const KEY = "digits-serve-key";
// Figures the browser test reads (draw-to-bars latency).
window.consoleStats = { drawLatencies: [] };

// ---------------------------------------------------------------- API, key and errors
class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(`${status} ${error.code || ""}: ${error.message || "request failed"}`);
    this.status = status;
  }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(method, path, body) {
  const init = { method, headers: authHeaders() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path.replace(/^\//, ""), init);
  } catch (error) { // the network: the service is down, restarting or out of reach
    throw new ApiError(0, { error: { code: "unreachable", message: "cannot reach the service" } });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function showStatus(message, ok = false) {
  const status = $("#status");
  status.textContent = message;
  status.className = ok ? "ok" : "";
  status.hidden = !message;
}

function showError(error) {
  let hint = "";
  if (error.status === 0) hint = " It may be down or restarting: the page tries again every few seconds.";
  if (error.status === 401) hint = " Enter the API key above.";
  if (error.status === 403) hint = " The key entered is not accepted for this action.";
  showStatus(`${error.message}${hint}`);
}

function setupKey() {
  const input = $("#api-key");
  input.value = sessionStorage.getItem(KEY) || "";
  input.addEventListener("change", () => {
    sessionStorage.setItem(KEY, input.value.trim());
    showStatus("");
    loadModels();
    showPage(currentPage());
  });
}

// ---------------------------------------------------------------- pages
const PAGES = ["draw", "models", "train"];
const currentPage = () => (PAGES.includes(location.hash.slice(1)) ? location.hash.slice(1) : "draw");

function showPage(name) {
  for (const section of document.querySelectorAll("main section")) section.hidden = section.dataset.page !== name;
  for (const tab of document.querySelectorAll("nav button")) tab.setAttribute("aria-selected", String(tab.dataset.page === name));
  if (name === "models") renderModels();
  if (name === "train") showTrain();
}

// ---------------------------------------------------------------- Draw
let models = null; // GET /models
const drawing = { version: 0, inputAt: 0, busy: new Map(), drawn: new Map() };

let retryTimer = null;
async function loadModels() {
  clearTimeout(retryTimer);
  try {
    const wasDown = document.body.dataset.unreachable === "true";
    models = await api("GET", "/models");
    document.body.dataset.unreachable = "false";
    if (wasDown) showStatus("the service answers again", true);
  } catch (error) {
    models = null;
    showError(error);
    if (error.status === 0) { // try again until it answers, then redraw what is shown
      document.body.dataset.unreachable = "true";
      retryTimer = setTimeout(() => loadModels().then(() => models && showPage(currentPage())), 3000);
    }
  }
  renderBars();
  fillExplainModels();
  return models;
}

function setupCanvas() {
  const canvas = $("#canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  clearCanvas();
  let last = null;
  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    stroke(ctx, last, last);
    changed(event.timeStamp);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    stroke(ctx, last, next);
    last = next;
    changed(event.timeStamp);
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("#clear").addEventListener("click", () => { clearCanvas(); $("#truth").textContent = ""; changed(performance.now()); });
  $("#random-digit").addEventListener("click", randomDigit);
}

function clearCanvas() {
  const ctx = $("#canvas").getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, 256, 256);
}

function stroke(ctx, [x0, y0], [x1, y1]) {
  // About 3 pixels of the 32x32 bitmap wide, as the optdigits pens were.
  Object.assign(ctx, { strokeStyle: "#000", lineWidth: 24, lineCap: "round", lineJoin: "round" });
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1 + 0.01, y1);
  ctx.stroke();
}

let testDigits = null;
async function randomDigit() {
  try {
    testDigits = testDigits || (await (await fetch("console/assets/test-digits.json")).json());
  } catch (error) {
    showStatus(`could not load the test digits: ${error}`);
    return;
  }
  const index = Math.floor(Math.random() * testDigits.labels.length);
  paintRow(testDigits.pixels[index]);
  $("#truth").textContent = `Test row ${index} of the lecture's split: true label ${testDigits.labels[index]}`;
  changed(performance.now());
}

// A load_digits row scaled up: each value v as a 32x32 square of ink v/16.
function paintRow(pixels) {
  const ctx = $("#canvas").getContext("2d");
  pixels.forEach((v, i) => {
    const grey = 255 - Math.round((v * 255) / 16);
    ctx.fillStyle = `rgb(${grey},${grey},${grey})`;
    ctx.fillRect((i % 8) * 32, Math.floor(i / 8) * 32, 32, 32);
  });
}

function changed(inputAt) {
  const canvas = $("#canvas");
  const image = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const pixels = DigitReduce.reduceImageData(image);
  drawing.version += 1;
  window.consoleStats.version = drawing.version;
  drawing.inputAt = inputAt;
  drawing.pixels = pixels;
  renderGrid(pixels);
  if (pixels.every((v) => v === 0)) { renderBars(drawing.version); renderHeatmap(null); recordLatency(drawing.version, inputAt, true); return; }
  for (const model of (models && models.models) || []) predictWith(model.name);
  explainLatest();
}

function renderGrid(pixels) {
  const grid = $("#grid");
  grid.dataset.values = JSON.stringify(pixels);
  grid.replaceChildren(...pixels.map((v) => {
    const grey = 255 - Math.round((v * 255) / 16);
    return el("div", { textContent: v, style: `background: rgb(${grey},${grey},${grey}); color: ${v > 8 ? "#fff" : "#000"}` });
  }));
}

// One request in flight per model; the newest drawing is sent when it returns (a blank one
// is not sent: "draw a digit" shows instead).
async function predictWith(name) {
  if (drawing.busy.get(name)) return;
  drawing.busy.set(name, true);
  try {
    while (drawing.drawn.get(name) !== drawing.version) {
      const version = drawing.version, inputAt = drawing.inputAt;
      if (drawing.pixels.every((v) => v === 0)) { drawing.drawn.set(name, version); break; }
      const answer = await api("POST", `/models/${encodeURIComponent(name)}/predict`, { pixels: drawing.pixels });
      drawing.drawn.set(name, version);
      renderModelBars(name, answer, version);
      recordLatency(version, inputAt);
    }
  } catch (error) {
    showError(error);
  } finally {
    drawing.busy.set(name, false);
  }
}

function recordLatency(version, inputAt, blank = false) {
  const names = ((models && models.models) || []).map((m) => m.name);
  if (blank) { names.forEach((n) => drawing.drawn.set(n, version)); $("#latency").textContent = ""; return; }
  if (!names.every((n) => drawing.drawn.get(n) === version)) return;
  const ms = performance.now() - inputAt;
  window.consoleStats.drawLatencies.push(ms);
  $("#latency").textContent = `drawing to bars: ${ms.toFixed(1)} ms`;
}

// Every model's card without an answer: a blank canvas is not sent, it asks for a digit
// (``version``: the blank drawing shown, for the page's tests).
function renderBars(version) {
  const bars = $("#bars");
  const data = version === undefined ? {} : { drawing: version };
  bars.replaceChildren(...((models && models.models) || []).map((m) =>
    el("div", { className: "model blank", id: `model-${m.name}`, dataset: data }, el("strong", { textContent: m.name }), el("span", { className: "label", textContent: "" }),
      el("p", { className: "note muted", textContent: "draw a digit" }), el("div", { className: "probs" }))));
}

function renderModelBars(name, answer, version) {
  const card = document.getElementById(`model-${name}`);
  if (!card) return;
  const { label, probabilities, outlier, outlier_score: score } = answer.predictions[0];
  card.querySelector("strong").textContent = `${name} v${answer.version}`;
  const labelEl = card.querySelector(".label");
  labelEl.textContent = label;
  card.dataset.label = label;
  card.dataset.drawing = version;
  card.classList.remove("blank");
  card.classList.toggle("flagged", outlier === true);
  card.dataset.outlier = String(outlier);
  card.querySelector(".note").textContent = outlier ? `this does not look like a digit (score ${score.toFixed(1)})` : "";
  card.querySelector(".probs").replaceChildren(...probabilities.map((p, digit) =>
    el("div", { className: digit === label ? "bar top" : "bar" }, el("span", { textContent: digit }), el("i", { style: `width: ${(p * 200).toFixed(1)}px` }), el("span", { textContent: p.toFixed(3) }))));
}

// ---------------------------------------------------------------- Why (explanations)
// The chosen model's attribution map for the newest drawing (POST /models/{name}/explain:
// occlusion, how much each pixel's ink raised the label's probability), one request in
// flight, drawn over the 8x8 grid: orange supports the label, blue speaks against it.
const explaining = { busy: false, drawn: -1 };

function setupExplain() {
  const select = $("#explain-model");
  select.addEventListener("change", () => { explaining.drawn = -1; explainLatest(); });
}

function fillExplainModels() {
  const select = $("#explain-model"), names = ((models && models.models) || []).map((m) => m.name);
  const keep = names.includes(select.value) ? select.value : (names.includes("cnn") ? "cnn" : names[0]);
  select.replaceChildren(...names.map((n) => el("option", { value: n, textContent: n })));
  if (keep) select.value = keep;
}

async function explainLatest() {
  const name = $("#explain-model").value;
  if (explaining.busy || !name) return;
  explaining.busy = true;
  try {
    while (explaining.drawn !== drawing.version) {
      const version = drawing.version;
      if (!drawing.pixels || drawing.pixels.every((v) => v === 0)) { renderHeatmap(null); explaining.drawn = version; break; }
      const answer = await api("POST", `/models/${encodeURIComponent(name)}/explain`, { pixels: drawing.pixels });
      explaining.drawn = version;
      renderHeatmap(answer, version);
    }
  } catch (error) {
    $("#explain-note").textContent = `no explanation: ${error.message}`;
  } finally {
    explaining.busy = false;
  }
}

function renderHeatmap(answer, version) {
  const map = $("#heatmap"), note = $("#explain-note");
  if (!answer) {
    map.replaceChildren(...Array.from({ length: 64 }, () => el("div")));
    map.dataset.values = "[]";
    note.textContent = "draw a digit to see which pixels drove the answer";
    return;
  }
  const row = answer.explanations[0];
  const values = row.attribution.flat();
  const top = Math.max(1e-9, ...values.map(Math.abs));
  map.dataset.values = JSON.stringify(values);
  map.dataset.drawing = version;
  map.dataset.label = row.label;
  map.replaceChildren(...values.map((v, i) => {
    const a = Math.min(1, Math.abs(v) / top).toFixed(2);
    const color = v >= 0 ? `rgba(208, 90, 32, ${a})` : `rgba(64, 96, 208, ${a})`;
    const ink = drawing.pixels ? drawing.pixels[i] : 0;
    return el("div", { title: `pixel (${Math.floor(i / 8)}, ${i % 8}): ink ${ink}, ${v >= 0 ? "+" : ""}${v.toFixed(3)}`, style: `background: ${color}; outline: ${ink > 0 ? "1px solid #1d243355" : "none"}` });
  }));
  note.textContent = `${answer.model} v${answer.version} says ${row.label} (p = ${row.probability.toFixed(3)}): orange pixels raised it, blue ones lowered it`;
}

// ---------------------------------------------------------------- start
setupKey();
setupCanvas();
setupExplain();
for (const tab of document.querySelectorAll("nav button")) tab.addEventListener("click", () => { location.hash = tab.dataset.page; });
window.addEventListener("hashchange", () => showPage(currentPage()));
loadModels().then(() => { showPage(currentPage()); changed(performance.now()); });
