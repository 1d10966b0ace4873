// The Models page (docs/console.md): each model's versions with readable architecture, fit
// time, accuracy and calibration, its aliases and traffic as a small diagram, the exported
// curves drawn with axes, and the rollout controls with a line of help each.
"use strict";

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

// "12 ms", "4.2 s", "3 min 05 s": a fit time in the unit that reads best.
function duration(seconds) {
  if (!Number.isFinite(seconds)) return "-";
  if (seconds < 1) return `${Math.max(1, Math.round(seconds * 1000))} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  return `${m} min ${String(s).padStart(2, "0")} s`;
}

// One line per family: the layers and their sizes, as training/models.py builds them.
function layers(arch) {
  const drop = arch.dropout ? `, dropout ${arch.dropout}` : "";
  if (arch.family === "logistic") return arch.hand_made ? "64 → 10, X·β + intercept (the lecture's hand-made form)" : "64 → 10 linear (softmax regression)";
  if (arch.family === "fnn") return `64 → ${Array(arch.depth).fill(`${arch.hidden} ${arch.activation}`).join(" → ")} → 10${drop}`;
  if (arch.family === "cnn") {
    const convs = arch.channels.map((c) => `conv3×3 ${c}${arch.batch_norm ? "+BN" : ""}`).join(" → ");
    const head = arch.fc_hidden ? `${arch.fc_hidden} relu → 10` : "10";
    return `8×8 → ${convs} (relu) → max-pool 2 → ${4 * 4 * arch.channels[arch.channels.length - 1]} → ${head}${drop}`;
  }
  return arch.family;
}

// The architecture cell: one line, or the member list of an ensemble (probabilities averaged).
function architecture(arch) {
  if (arch.family !== "ensemble") return el("span", { className: "arch", textContent: layers(arch) });
  const members = arch.members || [];
  return el("div", { className: "arch" },
    el("span", { textContent: `mean of ${members.length} members' probabilities:` }),
    el("ol", { className: "members" }, ...members.map((m) => el("li", { textContent: `${m.family}: ${layers(m.architecture)}` }))));
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
      el("td", {}, architecture(mf.architecture)),
      el("td", { className: "recipe", textContent: `${mf.recipe} recipe, ${metrics.iterations.toLocaleString("en")} iterations in ${duration(metrics.fit_seconds)}` }),
      el("td", { textContent: new Date(v.created).toISOString().slice(0, 16).replace("T", " ") }));
  });
  const heads = ["version", "family", "test accuracy", "errors", "test ECE", "test NLL", "reliability (test)", "architecture", "fit", "created (UTC)", ""];
  const table = el("table", {},
    el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { textContent: h })))),
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
  const svg = Chart.node("svg", { viewBox: "0 0 100 100", class: "reliability" });
  svg.append(Chart.node("title", {}, "accuracy against confidence per bin: grey before the temperature, orange as served"));
  const line = (points, color) => svg.append(Chart.node("polyline", { stroke: color,
    points: points.map(([x, y]) => `${(x * 100).toFixed(1)},${(100 - y * 100).toFixed(1)}`).join(" ") }));
  line([[0, 0], [1, 1]], "#9aa3b5");
  line(bins.before.map((b) => [b.confidence, b.accuracy]), "#9aa3b5");
  line(bins.after.map((b) => [b.confidence, b.accuracy]), "#d05a20");
  return svg;
}

// Means over spans of a long loss curve, at most `limit` points [iteration, loss].
function thinned(losses, limit = 400) {
  const stride = Math.max(1, Math.ceil(losses.length / limit)), out = [];
  for (let i = 0; i < losses.length; i += stride) {
    const span = losses.slice(i, i + stride);
    out.push([i + span.length, span.reduce((a, b) => a + b, 0) / span.length]);
  }
  return out;
}

// A version's exported loss and accuracy curves, with axes and legends.
async function showCurves(name, version, box) {
  try {
    const curves = await api("GET", `/models/${encodeURIComponent(name)}/versions/${version}/curves.json`);
    const total = curves.loss.length;
    const lossChart = Chart.draw(Chart.node("svg", { class: "chart" }), {
      series: [{ name: "training loss", color: "#4060d0", points: thinned(curves.loss) }],
      xMax: total, xTitle: "iteration", yTitle: "cross-entropy loss" });
    const accChart = Chart.draw(Chart.node("svg", { class: "chart" }), {
      series: [{ name: "train", color: "#4060d0", points: curves.accuracy.map((p) => [p.iteration, p.train]) },
        { name: "test", color: "#d05a20", points: curves.accuracy.map((p) => [p.iteration, p.test]) }],
      xMax: total, xTitle: "iteration", yTitle: "accuracy" });
    box.dataset.version = version;
    box.replaceChildren(el("p", { className: "muted", textContent: `v${version}: ${total.toLocaleString("en")} iterations as exported` }), lossChart, accChart);
  } catch (error) {
    box.replaceChildren(el("p", { className: "muted", textContent: `v${version}: no curves (${error.message})` }));
  }
}

// The rollout API (aliases, history, traffic): small and in one place, so that its field
// names can follow the API. Shown only when GET /models reports aliases or traffic.
const Rollout = {
  // Versions as boxes, each with the aliases that name it, and the traffic split as a bar.
  diagram(model, weights) {
    const aliases = model.aliases || {};
    const chips = model.versions.map((v) => el("div", { className: "chip" + (v.is_default ? " default" : ""), dataset: { version: v.version } },
      el("b", { textContent: `v${v.version}` }),
      ...Object.entries(aliases).filter(([, n]) => n === v.version).map(([a]) => el("span", { className: `alias alias-${a}`, textContent: a }))));
    const split = Object.entries(weights).filter(([, p]) => p > 0);
    const bar = el("div", { className: "split", title: "traffic split of requests that name no version" },
      ...(split.length ? split : [["production", 100]]).map(([a, p]) =>
        el("span", { className: `alias-${a}`, style: `flex-basis: ${p}%`, textContent: `${a} ${p}%` })));
    return el("div", { className: "diagram" }, el("div", { className: "chips" }, ...chips), bar);
  },

  view(model) {
    const box = el("div", { className: "rollout" });
    const aliases = model.aliases || {};
    // traffic: {weights: {alias: percent}, shadow, ...}, or the weights themselves
    const weights = (model.traffic && (model.traffic.weights || model.traffic)) || {};
    box.append(Rollout.diagram(model, weights));
    box.append(el("p", { className: "aliases", textContent: "aliases: " + (Object.entries(aliases).map(([a, v]) => `${a} -> v${v}`).join(", ") || "none") }));
    if (model.traffic) box.append(el("p", { className: "traffic", textContent: "traffic: " + (Object.entries(weights).map(([a, p]) => `${a} ${p}%`).join(", ") || "all to production") + (model.traffic.shadow ? `; shadow: ${model.traffic.shadow}` : "") }));
    const versions = model.versions.map((v) => el("option", { value: v.version, textContent: `v${v.version}` }));
    const alias = el("input", { value: "production", size: 10, ariaLabel: "alias" });
    const version = el("select", { ariaLabel: "version" }, ...versions);
    const reason = el("input", { placeholder: "reason (kept in the history)", ariaLabel: "reason" });
    const staging = el("input", { type: "number", min: 0, max: 100, value: weights.staging || 0, ariaLabel: "staging percent" });
    const act = (fn) => async () => { try { if (await fn() !== false) { showStatus("done", true); renderModels(); } } catch (e) { showError(e); } };
    const name = encodeURIComponent(model.name);
    const moveAlias = () => {
      const target = alias.value.trim();
      if (target === "production" && !confirm(`Move production of ${model.name} to v${version.value}? Requests that name no version will be served by it (if it passes the promotion gate).`)) return false;
      return api("PUT", `/models/${name}/aliases/${encodeURIComponent(target)}`, { version: Number(version.value), reason: reason.value || "moved from the console" });
    };
    const rollback = () => {
      if (!confirm(`Roll production of ${model.name} back to the version it named before its last move?`)) return false;
      return api("POST", `/models/${name}/aliases/production/rollback`, { reason: reason.value || "rollback from the console" });
    };
    const help = (text) => el("small", { className: "help", textContent: text });
    box.append(el("div", { className: "admin" },
      el("div", { className: "control" }, alias, version, reason,
        el("button", { textContent: "Move alias", onclick: act(moveAlias) }),
        help("Point an alias at a version; requests naming the alias get that version. Moving production asks first and must pass the promotion gate.")),
      el("div", { className: "control" },
        el("button", { textContent: "Roll back production", onclick: act(rollback) }),
        help("Production goes back to the version it named before its last move (asks first).")),
      el("div", { className: "control" }, el("label", {}, "staging %", staging),
        el("button", { textContent: "Set canary split", onclick: act(() => api("PUT", `/models/${name}/traffic`, { production: 100 - Number(staging.value), staging: Number(staging.value) })) }),
        help("Share of requests that name no version sent to staging; the rest go to production."))));
    return box;
  },
};
