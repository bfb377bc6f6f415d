// The outputs of a Wiro task (wiro_jupyter.widgets.OutputsView). Plain ES module, no build step.
// Traits: items [{kind, name, url, src, content_type, size, html, json, error}], answer_html,
// thinking_html, streaming, state.
// `html`, `answer_html` and `thinking_html` arrive sanitized (markdown-it + nh3 in the kernel); every
// other value is set as text or as a checked URL, never parsed as HTML. Media play only from `src`, the
// `data:` URL of what the kernel fetched; an output without one is a link: showing it requests nothing.
// The stylesheet is js/media.css, which the widget loads once per page (anywidget's `_css`).

function fmtSize(n) {
  if (!(n >= 0)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

function jsonTree(value, depth = 0) {
  if (value !== null && typeof value === "object") {
    const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    if (entries.length === 0) return node("span", "z", Array.isArray(value) ? "[]" : "{}");
    const details = node("details");
    details.open = depth < 2;
    const label = Array.isArray(value) ? `[…] ${entries.length} items` : `{…} ${entries.length} keys`;
    details.append(node("summary", "", label));
    const ul = node("ul");
    for (const [k, v] of entries) {
      const li = node("li");
      li.append(node("span", "k", k), document.createTextNode(": "), jsonTree(v, depth + 1));
      ul.append(li);
    }
    details.append(ul);
    return details;
  }
  const cls = typeof value === "string" ? "s" : typeof value === "number" ? "n" : typeof value === "boolean" ? "b" : "z";
  return node("span", cls, JSON.stringify(value));
}

function openLightbox(src, caption) {
  const box = node("div", "wiro-lightbox");
  const img = node("img");
  img.src = src;
  img.alt = caption;
  box.append(img, node("span", "", `${caption} — click or press Escape to close`));
  const close = () => {
    box.remove();
    document.removeEventListener("keydown", onKey, true);
  };
  const onKey = (e) => { if (e.key === "Escape") { e.stopPropagation(); close(); } };
  box.addEventListener("click", close);
  document.addEventListener("keydown", onKey, true);
  document.body.append(box);
  return close;
}

function render({ model, el }) {
  const root = node("div", "wiro-media");
  const thinking = node("details", "wiro-thinking");
  const thinkingBody = node("div");
  thinking.append(node("summary", "", "thinking"), thinkingBody);
  const answer = node("div", "wiro-answer");
  const files = node("div", "wiro-files");
  const pending = node("div", "wiro-media-pending");
  root.append(thinking, answer, files, pending);
  el.append(root);
  const closers = new Set();
  let thinkingTouched = false;
  thinking.addEventListener("toggle", () => { thinkingTouched = true; });

  function renderText() {
    const th = model.get("thinking_html") || "";
    const an = model.get("answer_html") || "";
    const streaming = model.get("streaming");
    thinking.style.display = th ? "" : "none";
    if (thinkingBody.innerHTML !== th) thinkingBody.innerHTML = th; // sanitized by nh3 in the kernel
    if (!thinkingTouched) thinking.open = streaming && !an;
    answer.style.display = an ? "" : "none";
    if (answer.innerHTML !== an) answer.innerHTML = an; // sanitized by nh3 in the kernel
    answer.classList.toggle("streaming", !!streaming);
  }

  function renderItems() {
    files.replaceChildren();
    const items = model.get("items") || [];
    const images = items.filter((i) => i.kind === "image" && embedded(i.src));
    if (images.length) {
      const grid = node("div", images.length === 1 ? "wiro-grid single" : "wiro-grid");
      for (const item of images) {
        const fig = node("figure");
        const img = node("img", "wiro-image");
        img.src = embedded(item.src);
        img.alt = item.name;
        img.title = `${item.name} — click to enlarge`;
        img.addEventListener("click", () => {
          const close = openLightbox(img.src, item.name);
          closers.add(close);
        });
        fig.append(img);
        if (images.length > 1) fig.append(node("figcaption", "", item.name));
        grid.append(fig);
      }
      files.append(grid);
    }
    for (const item of items) {
      const src = embedded(item.src);
      if (item.kind === "image" && src) continue;
      const link = safeUrl(item.src || item.url);
      const box = node("div", `wiro-item wiro-item-${item.kind}`);
      if (item.kind === "audio" && src) {
        const audio = node("audio", "wiro-audio");
        audio.controls = true;
        audio.src = src;
        box.append(audio, node("div", "wiro-caption", item.name));
      } else if (item.kind === "video" && src) {
        const video = node("video", "wiro-video");
        video.controls = true;
        video.src = src;
        box.append(video, node("div", "wiro-caption", item.name));
      } else if (item.kind === "animated" && src) {
        const img = node("img", "wiro-animated");
        img.src = src;
        img.alt = item.name;
        box.append(img, node("div", "wiro-caption", item.name));
      } else if (item.kind === "json" && item.json !== null && item.json !== undefined) {
        const tree = node("div", "wiro-json");
        tree.append(node("div", "wiro-caption", item.name), jsonTree(item.json));
        box.append(tree);
      } else if (item.kind === "text" && item.html) {
        const text = node("div", "wiro-text");
        text.innerHTML = item.html; // sanitized by nh3 in the kernel
        box.append(node("div", "wiro-caption", item.name), text);
      } else if (link) {
        const a = node("a", "wiro-file", `⬇ ${item.name}`);
        a.href = link;
        a.download = item.name;
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        box.append(a, node("span", "wiro-caption", ` ${item.content_type || ""} ${fmtSize(item.size)}`));
      } else {
        box.append(node("span", "wiro-caption", `${item.name} (no longer available)`));
      }
      if (item.error) box.append(node("div", "wiro-item-error", item.error));
      files.append(box);
    }
  }

  function renderState() {
    const st = model.get("state");
    root.dataset.state = st;
    pending.textContent = st === "loading" ? "loading outputs…" : "";
    pending.style.display = st === "loading" ? "" : "none";
  }

  renderText();
  renderItems();
  renderState();
  model.on("change:answer_html", renderText);
  model.on("change:thinking_html", renderText);
  model.on("change:streaming", renderText);
  model.on("change:items", renderItems);
  model.on("change:state", renderState);
  return () => {
    for (const close of closers) close();
    model.off("change:answer_html", renderText);
    model.off("change:thinking_html", renderText);
    model.off("change:streaming", renderText);
    model.off("change:items", renderItems);
    model.off("change:state", renderState);
  };
}

export default { render };
