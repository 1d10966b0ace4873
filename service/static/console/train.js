// The Train page (docs/console.md): a form built from the OpenAPI schema, the job followed live
// over server-sent events, its curves with axes, and the recent jobs with live progress.
"use strict";

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
    refreshJobs();
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
  Chart.draw($("#loss-chart"), { series: [{ name: "training loss", color: "#4060d0", points: job.losses }],
    xMax: progress.total, xTitle: "iteration (all fits of the job)", yTitle: "cross-entropy loss" });
  Chart.draw($("#accuracy-chart"), { series: [
    { name: "train", color: "#4060d0", points: job.accuracy.map(([x, t]) => [x, t]) },
    { name: "test", color: "#d05a20", points: job.accuracy.map(([x, , t]) => [x, t]) }],
  xMax: progress.total, xTitle: "iteration (all fits of the job)", yTitle: "accuracy" });
}

// Recent jobs, newest first; polled every second while one of them is queued or running
// (and the Train page is shown), so a running job's progress moves in the list too.
let jobsTimer = null;
async function refreshJobs() {
  clearTimeout(jobsTimer);
  try {
    const page = await api("GET", "/train?limit=10");
    $("#jobs tbody").replaceChildren(...page.jobs.map(jobRow));
    $("#jobs-empty").hidden = page.jobs.length > 0;
    const live = page.jobs.some((j) => j.status === "queued" || j.status === "running");
    if (live && currentPage() === "train") jobsTimer = setTimeout(refreshJobs, 1000);
  } catch (error) {
    showError(error);
  }
}

function jobRow(j) {
  const p = j.progress;
  const left = p.remaining_s === null || p.remaining_s === undefined ? "" : `, ~${duration(p.remaining_s)} left`;
  const fit = j.metrics && j.metrics.fit_seconds !== undefined ? duration(Number(j.metrics.fit_seconds)) : "";
  return el("tr", { dataset: { id: j.id, status: j.status } },
    el("td", { textContent: j.id.slice(0, 8) }), el("td", { textContent: j.name }), el("td", { textContent: j.family }),
    el("td", { className: `state ${j.status}`, textContent: j.status }),
    el("td", { className: "progress" }, el("progress", { max: p.total, value: p.iteration }),
      el("span", { textContent: ` ${p.iteration.toLocaleString("en")} / ${p.total.toLocaleString("en")}${j.status === "running" ? left : ""}` })),
    el("td", { textContent: j.metrics && j.metrics.test_accuracy !== undefined ? Number(j.metrics.test_accuracy).toFixed(4) : "" }),
    el("td", { textContent: fit }),
    el("td", { textContent: j.created.slice(0, 19).replace("T", " ") }));
}
