// A conversation with a Wiro LLM or a Dify-compatible app (wiro_jupyter.widgets.ChatView).
// Plain ES module, no build step. Traits are the whole contract with Python:
//   title, turns [finished turns], pending [the turn in flight], busy, stopping, show_input,
//   placeholder, notice.
// A turn: {id, role: "user" | "assistant" | "divider", text, html, thinking_html,
//          thoughts: [{tool, thought, input, observation}], files: [{url, src, type, name, mime}],
//          meta, state: "streaming" | "done" | "error" | "stopped", error, progress}.
// `html` and `thinking_html` arrive sanitized (markdown-it + nh3 in the kernel); every other value
// is set as text or as a checked URL, never parsed as HTML. A file shows inline only from `src`, the
// `data:` URL of what the kernel fetched; otherwise it is a link: showing a turn requests nothing.
// The input box sends {action: "send", text}; the Stop button sends {action: "stop"}.
// The stylesheet is js/chat.css, which the widget loads once per page (anywidget's `_css`).

function fileNode(f) {
  const name = f.name || f.type || "file";
  const src = embedded(f.src);
  const kind = src.slice(5).split("/", 1)[0]; // "data:image/png;…" -> "image"
  if (kind === "image") {
    const img = node("img");
    img.src = src; img.alt = name; img.title = name;
    return img;
  }
  if (kind === "audio") {
    const au = node("audio"); au.controls = true; au.src = src; au.title = name; return au;
  }
  if (kind === "video") {
    const v = node("video"); v.controls = true; v.src = src; v.title = name; return v;
  }
  const url = safeUrl(f.url);
  if (!url) return node("span", "wiro-chat-file", name);
  const a = node("a", "wiro-chat-file", name);
  a.href = url; a.target = "_blank"; a.rel = "noopener noreferrer";
  return a;
}

// Drafts survive a re-render of the view (JupyterLab re-creates views when an output is updated).
const drafts = new WeakMap();

function render({ model, el }) {
  const root = node("div", "wiro-chat");
  const head = node("div", "wiro-chat-head");
  const title = node("span", "wiro-chat-title");
  const status = node("span", "wiro-chat-status");
  head.append(title, status);
  const log = node("div", "wiro-chat-log");
  const empty = node("div", "wiro-chat-empty", "No messages yet.");
  const bar = node("div", "wiro-chat-bar");
  const inputWrap = node("div", "wiro-chat-input");
  const input = node("textarea");
  input.rows = 2;
  inputWrap.append(input);
  const send = node("button", "wiro-chat-send", "Send");
  const stop = node("button", "wiro-chat-stop", "Stop");
  send.type = stop.type = "button";
  stop.title = "Stop generating this answer";
  bar.append(inputWrap, send, stop);
  const notice = node("div", "wiro-chat-notice");
  root.append(head, log, bar, notice);
  el.append(root);

  const views = new Map(); // turn id -> {el, parts, last}
  let clickedStop = false;
  input.value = drafts.get(model) || "";

  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  }

  function buildAssistant(turn) {
    const wrap = node("div", "wiro-chat-turn assistant");
    const bubble = node("div", "wiro-chat-bubble");
    const thinking = node("details", "wiro-chat-thinking");
    const thinkingBody = node("div");
    thinking.append(node("summary", "", "Thinking"), thinkingBody);
    const steps = node("div", "wiro-chat-steps");
    const progress = node("div", "wiro-chat-progress");
    const answer = node("div", "wiro-chat-answer");
    const files = node("div", "wiro-chat-files");
    const error = node("div", "wiro-chat-error");
    bubble.append(thinking, steps, progress, answer, files, error);
    const meta = node("div", "wiro-chat-meta");
    wrap.append(bubble, meta);
    const parts = { thinking, thinkingBody, steps, progress, answer, files, error, meta, touched: false };
    thinking.querySelector("summary").addEventListener("click", () => { parts.touched = true; });
    return { el: wrap, parts };
  }

  function updateAssistant(view, turn) {
    const p = view.parts;
    const last = view.last || {};
    view.el.dataset.state = turn.state || "";
    const th = turn.thinking_html || "";
    p.thinking.style.display = th ? "" : "none";
    if (th !== last.thinking_html) p.thinkingBody.innerHTML = th; // sanitized by nh3 in the kernel
    if (!p.touched) p.thinking.open = turn.state === "streaming" && !turn.html;
    const steps = JSON.stringify(turn.thoughts || []);
    if (steps !== last.steps) {
      const open = Array.from(p.steps.children).map((d) => d.open);
      p.steps.replaceChildren();
      (turn.thoughts || []).forEach((s, i) => {
        const d = node("details", "wiro-chat-step");
        d.open = !!open[i];
        const label = s.tool ? `Tool: ${s.tool}` : "Step";
        const summary = node("summary", "", s.thought && s.tool ? `${label} — ${s.thought}` : s.thought || label);
        d.append(summary);
        if (s.tool) d.dataset.tool = s.tool;
        if (s.input) { d.append(node("div", "wiro-chat-step-label", "input"), node("pre", "wiro-chat-step-input", s.input)); }
        if (s.observation) {
          d.append(node("div", "wiro-chat-step-label", "observation"), node("pre", "wiro-chat-step-observation", s.observation));
        }
        p.steps.append(d);
      });
    }
    p.progress.textContent = turn.state === "streaming" && !turn.html ? (turn.progress || "…") : "";
    p.progress.style.display = p.progress.textContent ? "" : "none";
    if ((turn.html || "") !== last.html) p.answer.innerHTML = turn.html || ""; // sanitized by nh3 in the kernel
    const files = JSON.stringify(turn.files || []);
    if (files !== last.files) p.files.replaceChildren(...(turn.files || []).map(fileNode));
    p.files.style.display = (turn.files || []).length ? "" : "none";
    p.error.textContent = turn.error || "";
    p.error.style.display = turn.error ? "" : "none";
    p.meta.textContent = turn.meta || "";
    p.meta.style.display = turn.meta ? "" : "none";
    view.last = { thinking_html: th, steps, html: turn.html || "", files };
  }

  function buildTurn(turn) {
    if (turn.role === "divider") {
      return { el: node("div", "wiro-chat-divider", turn.text || "new conversation"), parts: null };
    }
    if (turn.role === "assistant") return buildAssistant(turn);
    const wrap = node("div", "wiro-chat-turn user");
    const bubble = node("div", "wiro-chat-bubble", turn.text || "");
    wrap.append(bubble);
    if ((turn.files || []).length) {
      const files = node("div", "wiro-chat-files");
      files.append(...turn.files.map(fileNode));
      wrap.append(files);
    }
    return { el: wrap, parts: null };
  }

  function renderLog() {
    const stick = atBottom();
    const all = (model.get("turns") || []).concat(model.get("pending") || []);
    const seen = new Set();
    let previous = null;
    for (const turn of all) {
      const id = String(turn.id);
      seen.add(id);
      let view = views.get(id);
      if (!view) {
        view = buildTurn(turn);
        view.el.dataset.id = id;
        view.el.dataset.role = turn.role;
        views.set(id, view);
      }
      if (turn.role === "assistant") updateAssistant(view, turn);
      else view.el.dataset.state = turn.state || "";
      const expected = previous ? previous.nextSibling : log.firstChild;
      if (expected !== view.el) log.insertBefore(view.el, expected);
      previous = view.el;
    }
    for (const [id, view] of views) {
      if (!seen.has(id)) { view.el.remove(); views.delete(id); }
    }
    if (all.length === 0) log.append(empty); else empty.remove();
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function renderControls() {
    const busy = !!model.get("busy");
    const stopping = !!model.get("stopping") || clickedStop;
    title.textContent = model.get("title") || "";
    status.textContent = busy ? (stopping ? "stopping…" : "answering…") : "";
    root.dataset.busy = busy ? "true" : "false";
    bar.style.display = model.get("show_input") || busy ? "" : "none";
    inputWrap.style.display = model.get("show_input") ? "" : "none";
    send.style.display = model.get("show_input") ? "" : "none";
    input.placeholder = model.get("placeholder") || "";
    send.disabled = busy || !input.value.trim();
    stop.style.display = busy ? "" : "none";
    stop.disabled = stopping;
    stop.textContent = stopping ? "Stopping…" : "Stop";
    notice.textContent = model.get("notice") || "";
    notice.style.display = notice.textContent ? "" : "none";
  }

  function doSend() {
    const text = input.value.trim();
    if (!text || model.get("busy")) return;
    model.send({ action: "send", text });
    input.value = "";
    drafts.set(model, "");
    renderControls();
  }

  send.addEventListener("click", doSend);
  stop.addEventListener("click", () => {
    clickedStop = true;
    renderControls();
    model.send({ action: "stop" });
  });
  input.addEventListener("input", () => { drafts.set(model, input.value); renderControls(); });
  input.addEventListener("keydown", (e) => {
    e.stopPropagation(); // keep JupyterLab's notebook shortcuts out of the text box
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      doSend();
    }
  });

  const onLog = () => renderLog();
  const onControls = () => {
    if (!model.get("busy")) clickedStop = false;
    renderControls();
  };
  model.on("change:turns", onLog);
  model.on("change:pending", onLog);
  const controlFields = ["busy", "stopping", "show_input", "placeholder", "notice", "title"];
  for (const f of controlFields) model.on(`change:${f}`, onControls);
  renderLog();
  renderControls();
  log.scrollTop = log.scrollHeight;
  return () => {
    model.off("change:turns", onLog);
    model.off("change:pending", onLog);
    for (const f of controlFields) model.off(`change:${f}`, onControls);
  };
}

export default { render };
