// The page: a search box with filters, a grid of results with infinite scroll, a detail view.
// Talks only to this server's /api; no framework, no build step, nothing from the network.

import { hasQuery, pageParams, readState, writeState } from "./state.js";

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};

let state = readState();
let image = null; // a dropped or pasted File: the query's example image (not in the URL)
let hits = [];
let total = 0;
let inflight = null; // the generation whose page is being fetched
let generation = 0; // bumps on every new search, so late answers of an old one are dropped
let current = -1; // the hit shown in the detail view

// -- the form <-> the state ---------------------------------------------------------

function fillForm() {
  $("q").value = state.q;
  $("f-type").value = state.type;
  $("f-path").value = state.path;
  $("f-where").value = state.where.join(", ");
  $("f-color").value = state.color.join(", ");
  $("f-after").value = state.after;
  $("f-before").value = state.before;
  $("f-sort").value = state.sort;
  $("f-all").checked = state.all;
}

function readForm() {
  state.q = $("q").value;
  state.type = $("f-type").value;
  state.path = $("f-path").value.trim();
  state.where = $("f-where").value.split(",").map((w) => w.trim()).filter((w) => w.includes("="));
  state.color = $("f-color").value.split(",").map((c) => c.trim()).filter(Boolean);
  state.after = $("f-after").value;
  state.before = $("f-before").value;
  state.sort = $("f-sort").value;
  state.all = $("f-all").checked;
}

function chips() {
  const box = $("chips");
  box.replaceChildren();
  const chip = (label, remove) => {
    const x = el("button", { type: "button", title: "Remove", "aria-label": "Remove" }, "×");
    x.addEventListener("click", remove);
    box.append(el("span", { class: "chip" }, label, x));
  };
  if (image) chip(`image: ${image.name || "pasted"}`, () => { image = null; search(); });
  if (state.like) chip(`like #${state.like}`, () => { state.like = null; search(); });
  for (const id of state.more) {
    chip(`more like #${id}`, () => { state.more = state.more.filter((m) => m !== id); search(); });
  }
  for (const id of state.less) {
    chip(`less like #${id}`, () => { state.less = state.less.filter((m) => m !== id); search(); });
  }
}

// -- fetching -------------------------------------------------------------------

async function fetchPage(offset) {
  // one query shape, the URL parameters; an image rides in a multipart body beside them
  const url = "/api/search?" + pageParams(state, offset).toString();
  let response;
  if (image) {
    const body = new FormData();
    body.append("image", image, image.name || "pasted.png");
    response = await fetch(url, { method: "POST", body });
  } else {
    response = await fetch(url);
  }
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

async function search() {
  writeState(state);
  chips();
  generation += 1;
  hits = [];
  total = 0;
  $("grid").replaceChildren();
  if (!hasQuery(state, image)) {
    $("status").textContent = "Type to search, or drop or paste an image.";
    return;
  }
  await loadMore(generation);
}

async function loadMore(gen = generation) {
  if (inflight === gen || !hasQuery(state, image) || (hits.length && hits.length >= total)) return;
  inflight = gen;
  $("status").textContent = hits.length ? "Loading more…" : "Searching…";
  try {
    const data = await fetchPage(hits.length);
    if (gen !== generation) return;
    total = data.total;
    const start = hits.length;
    hits.push(...data.results);
    data.results.forEach((hit, i) => $("grid").append(card(hit, start + i)));
    $("status").textContent = total
      ? `${total} result${total === 1 ? "" : "s"}` + (hits.length < total ? ` (${hits.length} shown)` : "")
      : "No results.";
    if (data.results.length === 0) total = hits.length;
  } catch (err) {
    if (gen === generation) $("status").textContent = `Error: ${err.message}`;
    total = hits.length;
  } finally {
    if (inflight === gen) inflight = null;
  }
  if (gen === generation && sentinelVisible()) loadMore(gen);
}

function sentinelVisible() {
  const box = $("sentinel").getBoundingClientRect();
  return box.top < window.innerHeight + 100 && hits.length < total;
}

// -- the grid ---------------------------------------------------------------------

function clock(seconds) {
  if (seconds == null) return "";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function fileName(path) {
  return path.split(/[\\/]/).pop();
}

function queryWords() {
  return state.q.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 1);
}

function highlighted(text) {
  const words = queryWords();
  const out = document.createDocumentFragment();
  if (!words.length) { out.append(text); return out; }
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})`, "giu");
  for (const [i, piece] of text.split(pattern).entries()) {
    out.append(i % 2 ? el("mark", { text: piece }) : piece);
  }
  return out;
}

function card(hit, index) {
  const node = el("div", { class: `card ${hit.modality}`, tabindex: "0", "data-index": String(index) });
  node.dataset.asset = String(hit.asset_id);
  node.append(el("span", { class: "score", text: `score ${hit.score.toFixed(3)}` }));
  node.title = `${fileName(hit.path)} · score ${hit.score.toFixed(3)}`;
  if (hit.thumbnail_url) {
    node.append(el("img", { src: hit.thumbnail_url, loading: "lazy", alt: fileName(hit.path) }));
  } else {
    node.append(el("div", { class: "snippet" }, highlighted(hit.snippet || "")));
  }
  if (hit.modality === "video") {
    node.append(el("span", { class: "badge", text: `▶ ${clock(hit.start)}–${clock(hit.end)}` }));
  }
  if (hit.ocr_line) node.append(el("div", { class: "ocr" }, "“", highlighted(hit.ocr_line), "”"));
  node.append(el("div", { class: "caption", text: fileName(hit.path) }));
  node.addEventListener("click", () => openDetail(index));
  node.addEventListener("keydown", (e) => { if (e.key === "Enter") openDetail(index); });
  return node;
}

// -- the detail view --------------------------------------------------------------

async function openDetail(index) {
  const hit = hits[index];
  if (!hit) return;
  current = index;
  $("detail").hidden = false;
  $("detail-title").textContent = fileName(hit.path);
  $("open-file").href = hit.file_url;
  const media = $("detail-media");
  media.replaceChildren();
  if (hit.modality === "video") {
    const video = el("video", { controls: "", preload: "metadata", src: hit.file_url });
    video.muted = true;
    video.addEventListener("loadedmetadata", () => {
      if (Math.abs(video.currentTime - hit.start) > 0.25) video.currentTime = hit.start || 0;
    }, { once: true });
    media.append(video);
  } else if (hit.modality === "image") {
    media.append(el("img", { src: hit.file_url, alt: fileName(hit.path) }));
  } else {
    media.append(el("pre", {}, highlighted(hit.snippet || "")));
  }
  moments(hit);
  const facts = $("detail-facts");
  facts.replaceChildren();
  const row = (k, v) => { if (v != null && v !== "") facts.append(el("dt", { text: k }), el("dd", { text: String(v) })); };
  row("score", hit.score.toFixed(3));
  row("type", hit.modality);
  if (hit.modality === "video") row("moment", `${clock(hit.start)}–${clock(hit.end)}`);
  if (hit.ocr_line) row("text seen", hit.ocr_line);
  try {
    const response = await fetch(`/api/assets/${hit.asset_id}`);
    const info = await response.json();
    if (!response.ok || current !== index) return;
    row("path", info.path);
    row("size", `${(info.size / 1024).toFixed(0)} KB`);
    if (info.width) row("pixels", `${info.width}×${info.height}`);
    if (info.duration) row("duration", clock(info.duration));
    row("taken", info.taken_at);
    const tags = Object.entries(info.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    row("tags", tags || "—");
    for (const line of (info.ocr_lines || []).slice(0, 8)) row("ocr", line.text);
  } catch (err) {
    row("error", err.message);
  }
}

function moments(hit) {
  const box = $("detail-moments");
  box.replaceChildren();
  if (hit.modality !== "video") return;
  const same = hits.map((h, i) => [h, i]).filter(([h]) => h.asset_id === hit.asset_id);
  if (same.length < 2) return;
  box.append(el("div", { text: "Other moments of this video:" }));
  for (const [h, i] of same) {
    const b = el("button", { type: "button", text: `${clock(h.start)}–${clock(h.end)}` });
    if (i === current) b.disabled = true;
    b.addEventListener("click", () => openDetail(i));
    box.append(b);
  }
}

function closeDetail() {
  $("detail").hidden = true;
  $("detail-media").replaceChildren();
  const back = document.querySelector(`.card[data-index="${current}"]`);
  current = -1;
  if (back) back.focus();
}

function feedback(kind) {
  const hit = hits[current];
  if (!hit) return;
  const id = hit.asset_id;
  state.more = state.more.filter((m) => m !== id);
  state.less = state.less.filter((m) => m !== id);
  state[kind].push(id);
  closeDetail();
  search();
}

// -- events -------------------------------------------------------------------------

let timer = null;
function debounced() {
  clearTimeout(timer);
  timer = setTimeout(() => { readForm(); search(); }, 250);
}

function takeImage(file) {
  if (!file || !file.type.startsWith("image/")) {
    $("status").textContent = "Only an image can be a query.";
    return;
  }
  image = file;
  state.like = null;
  search();
}

function init() {
  fillForm();
  $("q").addEventListener("input", debounced);
  for (const id of ["f-type", "f-sort", "f-all", "f-after", "f-before"]) {
    $(id).addEventListener("change", () => { readForm(); search(); });
  }
  for (const id of ["f-path", "f-where", "f-color"]) $(id).addEventListener("input", debounced);
  $("search").addEventListener("submit", (e) => { e.preventDefault(); clearTimeout(timer); readForm(); search(); });
  $("close").addEventListener("click", closeDetail);
  $("prev").addEventListener("click", () => openDetail(Math.max(current - 1, 0)));
  $("next").addEventListener("click", () => openDetail(Math.min(current + 1, hits.length - 1)));
  $("more-like").addEventListener("click", () => feedback("more"));
  $("less-like").addEventListener("click", () => feedback("less"));
  $("detail").addEventListener("click", (e) => { if (e.target === $("detail")) closeDetail(); });
  document.addEventListener("keydown", (e) => {
    if ($("detail").hidden) return;
    if (e.key === "Escape") closeDetail();
    else if (e.key === "ArrowRight") openDetail(Math.min(current + 1, hits.length - 1));
    else if (e.key === "ArrowLeft") openDetail(Math.max(current - 1, 0));
  });
  // drag and drop, or paste, an image as the query
  let depth = 0;
  document.addEventListener("dragenter", (e) => { e.preventDefault(); depth += 1; $("drop").hidden = false; });
  document.addEventListener("dragleave", () => { depth -= 1; if (depth <= 0) { depth = 0; $("drop").hidden = true; } });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    $("drop").hidden = true;
    takeImage(e.dataTransfer && e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData ? e.clipboardData.files : [])][0];
    if (file) { e.preventDefault(); takeImage(file); }
  });
  new IntersectionObserver((entries) => {
    if (entries.some((x) => x.isIntersecting)) loadMore();
  }, { rootMargin: "100px" }).observe($("sentinel"));
  window.addEventListener("popstate", () => { state = readState(); fillForm(); search(); });
  search();
}

init();
