// Helpers every widget's ES module shares. anywidget loads each module from its own blob URL, so
// one cannot import another: the kernel puts this file in front of each module's own text
// (wiro_jupyter/widgets/_static.py, `es_module`), and the helpers live once in the repository.

// The kernel's `_render.safe_url`, on this side too: http(s), or a base64 data: URL of an inert type.
const DATA_OK = /^data:(image\/(png|jpeg|gif|webp)|(audio|video)\/[a-z0-9][a-z0-9.+-]*|application\/octet-stream);base64,/i;

function safeUrl(u) {
  if (typeof u !== "string") return "";
  const s = u.trim();
  if (/^https?:\/\//i.test(s)) return s;
  if (DATA_OK.test(s)) return s;
  return "";
}

// A data: URL the kernel fetched, or "" (then the file is linked, and showing it requests nothing).
function embedded(u) {
  const s = safeUrl(u);
  return s.toLowerCase().startsWith("data:") ? s : "";
}

// An element whose text is set as text: model output never reaches innerHTML through here.
function node(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function fmtSeconds(s, digits = 1) {
  if (!(s >= 0)) return "";
  if (s < 60) return `${s.toFixed(digits)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

