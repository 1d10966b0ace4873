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
  const response = await fetch(path.replace(/^\//, ""), init);
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

async function loadModels() {
  try {
    models = await api("GET", "/models");
  } catch (error) {
    models = null;
    showError(error);
  }
  renderBars();
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
  if (pixels.every((v) => v === 0)) { renderBars(drawing.version); recordLatency(drawing.version, inputAt, true); return; }
  for (const model of (models && models.models) || []) predictWith(model.name);
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

// ---------------------------------------------------------------- Models
async function renderModels() {
  const data = await loadModels();
  const root = $("#models");
  if (!data) { root.replaceChildren(); return; }
  const rollout = data.models.some((m) => "aliases" in m || "traffic" in m);
  const note = $("#rollout-note");
  note.hidden = rollout;
  note.textContent = "This service reports no aliases or traffic split (no rollout API): the default version of each model is marked, and the alias, rollback and canary controls are hidden.";
  root.replaceChildren(...data.models.map((m) => modelCard(m, rollout)));
}

function modelCard(model, rollout) {
  const rows = model.versions.map((v) => {
    const mf = v.manifest, metrics = mf.metrics;
    return el("tr", { dataset: { version: v.version } },
      el("td", { textContent: v.version + (v.is_default ? " (default)" : "") }),
      el("td", { textContent: mf.family }),
      el("td", { textContent: metrics.test_accuracy.toFixed(4) }),
      el("td", { textContent: `${metrics.test_errors} / ${metrics.n_test}` }),
      el("td", { className: "ece", textContent: calibrationText(mf.calibration, "ece") }),
      el("td", { className: "nll", textContent: calibrationText(mf.calibration, "nll") }),
      el("td", {}, reliabilityChart(mf.calibration)),
      el("td", { textContent: JSON.stringify(mf.architecture) }),
      el("td", { textContent: `${mf.recipe}, ${metrics.iterations} it, ${metrics.fit_seconds.toFixed(1)} s` }),
      el("td", { textContent: new Date(v.created).toISOString().slice(0, 16).replace("T", " ") }));
  });
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ...["version", "family", "test accuracy", "errors", "test ECE", "test NLL", "reliability (test)", "architecture", "recipe", "created", ""].map((h) => el("th", { textContent: h })))),
    el("tbody", {}, ...rows));
  const curves = el("div", { className: "curves" });
  const card = el("div", { className: "model", id: `models-${model.name}` },
    el("h2", { textContent: `${model.name}${model.ready ? "" : " (not ready: " + model.reason + ")"}` }), table, curves);
  for (const row of rows) {
    row.append(el("td", {}, el("button", { textContent: "curves", onclick: () => showCurves(model.name, Number(row.dataset.version), curves) })));
  }
  if (model.versions.length) showCurves(model.name, model.default_version, curves);
  if (rollout) card.append(Rollout.view(model));
  return card;
}

// A calibration figure on the test rows as served (after the temperature), "-" without one.
function calibrationText(calibration, key) {
  const value = calibration && calibration[`${key}_test_after`];
  return typeof value === "number" ? value.toFixed(4) : "-";
}

// The reliability diagram of the test rows (accuracy against confidence per bin, as served),
// drawn from the manifest's bins; versions exported before them have none.
function reliabilityChart(calibration) {
  const bins = calibration && calibration.reliability_test;
  if (!bins) return document.createTextNode("-");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.classList.add("reliability");
  const line = (points, color) => {
    const poly = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    poly.setAttribute("points", points.map(([x, y]) => `${(x * 100).toFixed(1)},${(100 - y * 100).toFixed(1)}`).join(" "));
    poly.setAttribute("stroke", color);
    svg.append(poly);
  };
  line([[0, 0], [1, 1]], "#9aa3b5");
  line(bins.before.map((b) => [b.confidence, b.accuracy]), "#9aa3b5");
  line(bins.after.map((b) => [b.confidence, b.accuracy]), "#d05a20");
  return svg;
}

// A version's exported loss and accuracy curves (the loss thinned to 400 means for drawing).
async function showCurves(name, version, box) {
  try {
    const curves = await api("GET", `/models/${encodeURIComponent(name)}/versions/${version}/curves.json`);
    const stride = Math.max(1, Math.ceil(curves.loss.length / 400));
    const loss = [];
    for (let i = 0; i < curves.loss.length; i += stride) {
      const span = curves.loss.slice(i, i + stride);
      loss.push([i + span.length, span.reduce((a, b) => a + b, 0) / span.length]);
    }
    const total = curves.loss.length;
    const svg = () => document.createElementNS("http://www.w3.org/2000/svg", "svg");
    const lossChart = svg(), accChart = svg();
    for (const chart of [lossChart, accChart]) { chart.setAttribute("viewBox", "0 0 400 160"); chart.classList.add("chart"); }
    plot(lossChart, [loss], ["#4060d0"], total);
    plot(accChart, [curves.accuracy.map((p) => [p.iteration, p.train]), curves.accuracy.map((p) => [p.iteration, p.test])], ["#4060d0", "#d05a20"], total);
    box.dataset.version = version;
    box.replaceChildren(el("p", { className: "muted", textContent: `v${version}: loss over ${total} iterations; accuracy, train (blue) and test (orange)` }), lossChart, accChart);
  } catch (error) {
    box.replaceChildren(el("p", { className: "muted", textContent: `v${version}: no curves (${error.message})` }));
  }
}

// The rollout API (aliases, history, traffic): small and in one place, so that its field
// names can follow the API. Shown only when GET /models reports aliases or traffic.
const Rollout = {
  view(model) {
    const box = el("div");
    const aliases = model.aliases || {};
    box.append(el("p", { className: "aliases", textContent: "aliases: " + (Object.entries(aliases).map(([a, v]) => `${a} -> v${v}`).join(", ") || "none") }));
    // traffic: {weights: {alias: percent}, shadow, ...} (issue 11), or the weights themselves
    const weights = (model.traffic && (model.traffic.weights || model.traffic)) || {};
    if (model.traffic) box.append(el("p", { className: "traffic", textContent: "traffic: " + (Object.entries(weights).map(([a, p]) => `${a} ${p}%`).join(", ") || "all to production") + (model.traffic.shadow ? `; shadow: ${model.traffic.shadow}` : "") }));
    const versions = model.versions.map((v) => el("option", { value: v.version, textContent: `v${v.version}` }));
    const alias = el("input", { value: "production", size: 10, ariaLabel: "alias" });
    const version = el("select", { ariaLabel: "version" }, ...versions);
    const reason = el("input", { placeholder: "reason", ariaLabel: "reason" });
    const staging = el("input", { type: "number", min: 0, max: 100, value: weights.staging || 0, ariaLabel: "staging percent" });
    const act = (fn) => async () => { try { await fn(); showStatus("done", true); renderModels(); } catch (e) { showError(e); } };
    const name = encodeURIComponent(model.name);
    box.append(el("div", { className: "admin" },
      alias, version, reason,
      el("button", { textContent: "Move alias", onclick: act(() => api("PUT", `/models/${name}/aliases/${encodeURIComponent(alias.value)}`, { version: Number(version.value), reason: reason.value || "moved from the console" })) }),
      el("button", { textContent: "Roll back production", onclick: act(() => api("POST", `/models/${name}/aliases/production/rollback`, { reason: reason.value || "rollback from the console" })) }),
      el("label", {}, "staging %", staging),
      el("button", { textContent: "Set canary split", onclick: act(() => api("PUT", `/models/${name}/traffic`, { production: 100 - Number(staging.value), staging: Number(staging.value) })) })));
    return box;
  },
};

// ---------------------------------------------------------------- Train
let schema = null; // the OpenAPI document's JobSpec and Hyperparameters
let job = null; // the job followed here: {id, losses: [], accuracy: [], controller}

async function showTrain() {
  if (!schema) {
    try {
      const openapi = await api("GET", "/openapi.json");
      schema = openapi.components.schemas;
      buildForm();
    } catch (error) {
      showError(error);
    }
  }
  refreshJobs();
}

const resolve = (s) => (s && s.$ref ? schema[s.$ref.split("/").pop()] : s);
const nonNull = (s) => (s && s.anyOf ? s.anyOf.find((o) => o.type !== "null") : s);

function familyRules(family) {
  // JobSpec's allOf: for each family, the hyper-parameters that may only be null there.
  const rule = (schema.JobSpec.allOf || []).find((r) => r.if.properties.family.const === family);
  return rule ? Object.keys(rule.then.properties.hyperparameters.properties) : [];
}

function buildForm() {
  const familySchema = resolve(nonNull(schema.JobSpec.properties.family));
  const select = $("#family");
  select.replaceChildren(...familySchema.enum.map((f) => el("option", { value: f, textContent: f })));
  select.value = familySchema.enum.includes("fnn") ? "fnn" : familySchema.enum[0];
  select.addEventListener("change", buildHyperparameters);
  buildHyperparameters();
  $("#train-form").addEventListener("submit", (event) => { event.preventDefault(); startJob(); });
  $("#cancel").addEventListener("click", cancelJob);
}

function buildHyperparameters() {
  const unused = familyRules($("#family").value);
  const fieldset = $("#hyperparameters");
  const legend = fieldset.querySelector("legend");
  const props = schema.Hyperparameters.properties;
  const fields = Object.entries(props).filter(([name]) => !unused.includes(name)).map(([name, raw]) => {
    const s = { ...raw, ...resolve(nonNull(raw)) }; // bounds sit beside the anyOf
    let input;
    if (s.enum || s.type === "boolean") {
      const options = s.enum || [true, false];
      input = el("select", { name }, el("option", { value: "", textContent: "(recipe)" }), ...options.map((o) => el("option", { value: String(o), textContent: String(o) })));
    } else if (s.type === "array") {
      input = el("input", { name, placeholder: "e.g. 16,32" });
    } else {
      input = el("input", { name, type: "number", placeholder: "(recipe)", step: s.type === "integer" ? "1" : "any" });
      if (s.minimum !== undefined) input.min = s.minimum;
      if (s.maximum !== undefined) input.max = s.maximum;
    }
    input.dataset.kind = s.type || "enum";
    const bounds = raw.description || (s.minimum !== undefined ? `[${s.minimum}, ${s.maximum}]` : (s.enum || []).join(" | "));
    return el("label", {}, el("span", { textContent: name }), input, el("small", { textContent: bounds }));
  });
  fieldset.replaceChildren(legend, ...fields);
}

function formSpec() {
  const form = $("#train-form");
  const spec = { family: form.family.value, recipe: form.recipe.value, promote: form.promote.checked, hyperparameters: {} };
  if (form.name.value.trim()) spec.name = form.name.value.trim();
  for (const input of $("#hyperparameters").querySelectorAll("input, select")) {
    const value = input.value.trim();
    if (!value) continue;
    const kind = input.dataset.kind;
    spec.hyperparameters[input.name] =
      kind === "integer" || kind === "number" ? Number(value)
        : kind === "boolean" ? value === "true"
          : kind === "array" ? value.split(",").map((v) => Number(v.trim()))
            : value;
  }
  return spec;
}

async function startJob() {
  try {
    const view = await api("POST", "/train", formSpec());
    showStatus("");
    follow(view);
  } catch (error) {
    showError(error);
  }
}

async function cancelJob() {
  if (!job) return;
  try { await api("DELETE", `/train/${job.id}`); } catch (error) { showError(error); }
}

function follow(view) {
  if (job && job.controller) job.controller.abort();
  job = { id: view.id, losses: [], accuracy: [], controller: new AbortController() };
  applyView(view);
  $("#cancel").disabled = false;
  streamEvents(job).catch((error) => { if (error.name !== "AbortError") showStatus(`event stream: ${error.message}`); });
}

function applyView(view) {
  job.losses = view.loss_curve.map((v, i) => [view.loss_curve_iterations[i], v]);
  job.accuracy = view.accuracy.iterations.map((it, i) => [it, view.accuracy.train[i], view.accuracy.test[i]]);
  renderJob(view.status, view.progress, view);
}

// Server-sent events read through fetch(), so the key goes in a header (EventSource sends none).
async function streamEvents(followed) {
  const response = await fetch(`train/${followed.id}/events`, { headers: authHeaders(), signal: followed.controller.signal });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: ?(.*)$/m.exec(block);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (event && data && job === followed) onEvent(event[1], JSON.parse(data));
    }
  }
}

function onEvent(kind, data) {
  if (kind === "progress") {
    data.losses.forEach((loss, i) => job.losses.push([data.first_iteration + i, loss]));
    data.accuracy.forEach((p) => job.accuracy.push([p.iteration, p.train, p.test]));
    renderJob(data.status, data.progress);
  } else {
    applyView(data);
    if (kind === "final") { $("#cancel").disabled = true; refreshJobs(); }
  }
}

function renderJob(status, progress, view) {
  const status_ = $("#job-status");
  status_.dataset.status = status;
  status_.dataset.points = job.losses.length;
  let text = `job ${job.id.slice(0, 8)}: ${status}, iteration ${progress.iteration} of ${progress.total}`;
  if (view && view.model) text += `; published ${view.model.name} v${view.model.version}`;
  if (view && view.error) text += `; ${view.error}`;
  status_.textContent = text;
  plot($("#loss-chart"), [job.losses.map(([x, y]) => [x, y])], ["#4060d0"], progress.total);
  plot($("#accuracy-chart"), [job.accuracy.map(([x, t]) => [x, t]), job.accuracy.map(([x, , t]) => [x, t])], ["#4060d0", "#d05a20"], progress.total);
}

// Line chart in SVG: x from 0 to xMax, y from the series' min to max.
function plot(svg, series, colors, xMax) {
  const all = series.flat();
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  if (!all.length) return;
  const ys = all.map((p) => p[1]);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  if (hi === lo) { hi += 1; lo -= 1; }
  const X = (x) => 30 + (360 * x) / Math.max(1, xMax), Y = (y) => 150 - (140 * (y - lo)) / (hi - lo);
  series.forEach((points, i) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" "));
    line.setAttribute("stroke", colors[i]);
    line.dataset.points = points.length;
    svg.append(line);
  });
  for (const [y, v] of [[10, hi], [150, lo]]) {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2);
    label.setAttribute("y", y);
    label.textContent = v.toPrecision(3);
    svg.append(label);
  }
}

async function refreshJobs() {
  try {
    const page = await api("GET", "/train?limit=10");
    $("#jobs tbody").replaceChildren(...page.jobs.map((j) => el("tr", { dataset: { id: j.id, status: j.status } },
      el("td", { textContent: j.id.slice(0, 8) }), el("td", { textContent: j.name }), el("td", { textContent: j.family }),
      el("td", { textContent: j.status }), el("td", { textContent: `${j.progress.iteration}/${j.progress.total}` }),
      el("td", { textContent: j.metrics && j.metrics.test_accuracy !== undefined ? Number(j.metrics.test_accuracy).toFixed(4) : "" }),
      el("td", { textContent: j.created.slice(0, 19).replace("T", " ") }))));
  } catch (error) {
    showError(error);
  }
}

// ---------------------------------------------------------------- start
setupKey();
setupCanvas();
for (const tab of document.querySelectorAll("nav button")) tab.addEventListener("click", () => { location.hash = tab.dataset.page; });
window.addEventListener("hashchange", () => showPage(currentPage()));
loadModels().then(() => { showPage(currentPage()); changed(performance.now()); });
