// nar serve page: generate, paint a mask, regenerate the masked part, history. No build step.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { models: null, current: null, history: [], painting: false, last: null, masked: false, runs: 0 };
window.narState = state;            // read by the browser test
const mask = document.createElement("canvas");   // white = regenerate, at the image's own size
const overlay = $("overlay");

function setBusy(busy) {
  document.body.dataset.busy = busy ? "1" : "0";
  $("generate").disabled = busy;
  $("inpaint").disabled = busy || !state.current || !state.masked;
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function parseTiming(header) {
  const out = [];
  for (const part of (header || "").split(",")) {
    const [name, ...params] = part.trim().split(";");
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    if (name && dur) out.push([name, parseFloat(dur.slice(4))]);
  }
  return out;
}

function blobToDataURL(blob) {
  return new Promise((resolve) => { const r = new FileReader(); r.onload = () => resolve(r.result); r.readAsDataURL(blob); });
}

// ---- models -> controls ----------------------------------------------------------------------
async function loadModels() {
  const r = await fetch("/models");
  state.models = await r.json();
  $("fill-temperature").value = String((state.models.defaults || {}).inpaint_temperature ?? 1);
  const prior = $("prior");
  prior.innerHTML = "";
  for (const p of state.models.priors) prior.add(new Option(p.name, p.name));
  // maskgit first: at its training size (256²) it is the quickest good-looking choice on a CPU
  const pick = ["maskgit", "sundae"].map((n) => state.models.priors.find((p) => p.name === n)).find(Boolean)
    || state.models.priors[0];
  if (pick) prior.value = pick.name;
  onPrior();
  status(state.models.priors.length ? "ready" : "this server has no priors", !state.models.priors.length);
}

function onPrior() {
  const p = state.models.priors.find((x) => x.name === $("prior").value);
  if (!p) return;
  const scene = $("scene");
  scene.innerHTML = "";
  scene.add(new Option("any", ""));
  for (const c of p.class_names) scene.add(new Option(c, c));
  const size = $("size");
  const f = state.models.tokenizer.factor, max = state.models.limits.max_size;
  size.innerHTML = "";
  for (const s of [128, 256, 384, 512, 768, 1024]) {
    if (s <= max && s % f === 0) size.add(new Option(`${s}\u00d7${s}${s === p.train_size ? " (trained)" : ""}`, s));
  }
  size.value = String(Math.min(p.train_size || 256, 512));
  if (!size.value) size.value = size.options[0].value;
  $("steps-label").style.display = p.uses_steps ? "" : "none";
  if (p.default_steps) $("steps").value = Math.min(p.default_steps, 12);
}

function common() {
  const p = state.models.priors.find((x) => x.name === $("prior").value);
  const body = { prior: $("prior").value, seed: parseInt($("seed").value || "0", 10),
                 cfg: parseFloat($("cfg").value || "1") };
  if ($("temperature").value) body.temperature = parseFloat($("temperature").value);  // blank: the prior's own
  if (p && p.uses_steps) body.steps = parseInt($("steps").value || "8", 10);
  if ($("scene").value) body["class"] = $("scene").value;
  return body;
}

// ---- requests ----------------------------------------------------------------------------------
async function request(path, body, label) {
  setBusy(true);
  status(`${label}\u2026`);
  const t0 = performance.now();
  try {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", Accept: "image/png" },
                                  body: JSON.stringify(body) });
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
      throw new Error(`${r.status}: ${detail}`);
    }
    const blob = await r.blob();
    const timings = parseTiming(r.headers.get("Server-Timing"));
    timings.push(["round trip (browser)", performance.now() - t0]);
    let settings = {};
    try { settings = JSON.parse(r.headers.get("X-Nar-Settings") || "{}"); } catch (e) { /* ignore */ }
    const url = await blobToDataURL(blob);
    state.runs += 1;
    show({ url, timings, settings, label, body });
    status(`${label}: done`);
  } catch (e) {
    status(String(e.message || e), true);
  } finally {
    setBusy(false);
  }
}

function generate() {
  const body = { ...common(), size: parseInt($("size").value, 10), format: "png" };
  request("/generate", body, `generate #${state.history.length + 1}`);
}

function inpaint() {
  if (!state.current || !state.masked) return;
  const body = { ...common(), image: state.current.url, mask: mask.toDataURL("image/png"), format: "png",
                 temperature: parseFloat($("fill-temperature").value || "1") };
  request("/inpaint", body, `refine #${state.history.length + 1}`);
  if ($("vary").checked) $("seed").value = String(body.seed + 1);
}

// ---- showing results, history -----------------------------------------------------------------
function show(entry, fromHistory = false) {
  const img = $("result");
  img.onload = () => {
    resetMask(img.naturalWidth, img.naturalHeight);
    $("stage").classList.remove("empty");
    state.shown = (state.shown || 0) + 1;
    setBusy(false);
  };
  img.src = entry.url;
  state.current = entry;
  if (!fromHistory) state.history.push(entry);
  renderTimings(entry.timings);
  const s = entry.settings;
  const lines = [`prior ${s.prior ?? ""}  seed ${s.seed ?? ""}  steps ${s.steps_run ?? s.steps ?? ""}`];
  if (s.image_size) lines.push(`image ${s.image_size[0]}\u00d7${s.image_size[1]}, grid ${s.grid[0]}\u00d7${s.grid[1]}`);
  if (s.tokens_regenerated !== undefined) lines.push(`regenerated ${s.tokens_regenerated}/${s.tokens_total} tokens`);
  if (s.cli) lines.push(`same image from the CLI:\n  ${s.cli}`);
  $("settings").textContent = lines.join("\n");
  renderHistory();
}

function renderTimings(timings) {
  const body = $("timings").tBodies[0];
  body.innerHTML = "";
  const max = Math.max(1, ...timings.map(([, ms]) => ms));
  for (const [name, ms] of timings) {
    const tr = body.insertRow();
    tr.insertCell().textContent = name;
    const td = tr.insertCell();
    td.className = "ms";
    td.textContent = `${ms.toFixed(0)} ms`;
    const bar = tr.insertCell();
    bar.innerHTML = `<span class="bar" style="width:${Math.round(120 * ms / max)}px"></span>`;
  }
}

function renderHistory() {
  const box = $("history");
  box.innerHTML = "";
  state.history.forEach((entry, i) => {
    const fig = document.createElement("figure");
    fig.className = entry === state.current ? "current" : "";
    fig.innerHTML = `<img alt="result ${i + 1}"><figcaption>${i + 1}. ${entry.label.split(" ")[0]}</figcaption>`;
    fig.querySelector("img").src = entry.url;
    fig.onclick = () => show(entry, true);
    box.appendChild(fig);
  });
  box.scrollLeft = box.scrollWidth;
}

// ---- painting the mask --------------------------------------------------------------------------
function resetMask(w, h) {
  for (const c of [mask, overlay]) { c.width = w; c.height = h; }
  const m = mask.getContext("2d");
  m.fillStyle = "black";
  m.fillRect(0, 0, w, h);
  overlay.getContext("2d").clearRect(0, 0, w, h);
  state.masked = false;
  setBusy(document.body.dataset.busy === "1");
}

function toImage(e) {
  const r = overlay.getBoundingClientRect();
  return [(e.clientX - r.left) * overlay.width / r.width, (e.clientY - r.top) * overlay.height / r.height];
}

function stroke(from, to) {
  const width = parseInt($("brush").value, 10) * overlay.width / overlay.getBoundingClientRect().width;
  for (const [c, colour] of [[mask, "white"], [overlay, "#ff2d55"]]) {
    const g = c.getContext("2d");
    g.strokeStyle = colour; g.lineWidth = width; g.lineCap = "round"; g.lineJoin = "round";
    g.beginPath(); g.moveTo(from[0], from[1]); g.lineTo(to[0], to[1]); g.stroke();
  }
  state.masked = true;
  $("inpaint").disabled = document.body.dataset.busy === "1" || !state.current;
}

overlay.addEventListener("pointerdown", (e) => {
  if (!state.current) return;
  state.painting = true;
  state.last = toImage(e);
  stroke(state.last, state.last);
  overlay.setPointerCapture?.(e.pointerId);
});
overlay.addEventListener("pointermove", (e) => {
  if (!state.painting) return;
  const p = toImage(e);
  stroke(state.last, p);
  state.last = p;
});
for (const ev of ["pointerup", "pointercancel", "pointerleave"]) overlay.addEventListener(ev, () => { state.painting = false; });

window.narMaskDataURL = () => mask.toDataURL("image/png");   // for the browser test

// ---- wiring -------------------------------------------------------------------------------------
$("prior").addEventListener("change", onPrior);
$("generate").addEventListener("click", generate);
$("inpaint").addEventListener("click", inpaint);
$("clear-mask").addEventListener("click", () => { if (state.current) resetMask(mask.width, mask.height); });
$("dice").addEventListener("click", () => { $("seed").value = String(Math.floor(Math.random() * 1e6)); });
loadModels().catch((e) => status(`cannot read /models: ${e}`, true));
