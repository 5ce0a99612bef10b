// The search's state lives in the URL, so a search can be bookmarked, shared and reloaded.
// Keys: q, type, path, where (repeatable), color (repeatable), after, before, sort, all,
// more / less (asset ids, repeatable), like (an asset id as the example), k (page size).
// The URL's keys are GET /api/search's parameters: the page's one query shape. It sends
// them as they are, in the URL of a GET, or of a POST that uploads an image; parameters
// the form has no field for (glob, min_width, taken_after, color_words, ...) ride along.

export const PAGE = 24;

const OWN = ["q", "type", "path", "where", "color", "after", "before", "sort", "all", "more",
  "less", "like", "k"];
const NEVER = ["token", "offset"]; // the guard's, and each page's own

export function readState(search = window.location.search) {
  const p = new URLSearchParams(search);
  const ids = (key) => p.getAll(key).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  return {
    q: p.get("q") || "",
    type: p.get("type") || "",
    path: p.get("path") || "",
    where: p.getAll("where").filter((w) => w.includes("=")),
    color: p.getAll("color").filter((c) => c.trim()),
    after: p.get("after") || "",
    before: p.get("before") || "",
    sort: p.get("sort") === "time" ? "time" : "score",
    all: p.get("all") === "1",
    more: ids("more"),
    less: ids("less"),
    like: ids("like")[0] || null,
    k: Math.min(Math.max(Number(p.get("k")) || PAGE, 1), 200),
    extra: [...p].filter(([key]) => !OWN.includes(key) && !NEVER.includes(key)),
  };
}

export function toSearchParams(state) {
  const p = new URLSearchParams();
  if (state.q) p.set("q", state.q);
  if (state.type) p.set("type", state.type);
  if (state.path) p.set("path", state.path);
  for (const w of state.where) p.append("where", w);
  for (const c of state.color) p.append("color", c);
  if (state.after) p.set("after", state.after);
  if (state.before) p.set("before", state.before);
  if (state.sort !== "score") p.set("sort", state.sort);
  if (state.all) p.set("all", "1");
  for (const id of state.more) p.append("more", String(id));
  for (const id of state.less) p.append("less", String(id));
  if (state.like) p.set("like", String(state.like));
  if (state.k !== PAGE) p.set("k", String(state.k));
  for (const [key, value] of state.extra) p.append(key, value);
  return p;
}

export function writeState(state) {
  const query = toSearchParams(state).toString();
  const url = window.location.pathname + (query ? "?" + query : "");
  if (url !== window.location.pathname + window.location.search) {
    window.history.replaceState(null, "", url);
  }
}

export function hasQuery(state, image) {
  return Boolean(
    state.q.trim() || state.color.length || state.like || state.more.length || image,
  );
}

// /api/search parameters of one page (GET, or POST with an uploaded image).
export function pageParams(state, offset) {
  const p = toSearchParams(state);
  p.delete("k");
  p.set("k", String(state.k));
  p.set("offset", String(offset));
  return p;
}
