// The live status bar of a Wiro task (wiro_jupyter.widgets.StatusBar).
// Plain ES module, no build step. Traits are the whole contract with Python:
//   model, task_id, stages [{id, label}], stage, status, state, started_at, elapsed,
//   percentage, progress, message, queue_position, cost, error, busy, notice.
// The buttons send {action: "cancel"} / {action: "kill"} as custom messages.
// The stylesheet is js/status.css, which the widget loads once per page (anywidget's `_css`).

const ENDED = new Set(["done", "failed", "cancelled"]);

function render({ model, el }) {
  const root = node("div", "wiro-status");
  const head = node("div", "wiro-status-head");
  const name = node("span", "wiro-status-model");
  const state = node("span", "wiro-status-state");
  const elapsed = node("span", "wiro-status-elapsed wiro-status-meta");
  const cost = node("span", "wiro-status-cost wiro-status-meta");
  const queue = node("span", "wiro-status-queue wiro-status-meta");
  const buttons = node("span", "wiro-status-buttons");
  const cancel = node("button", "wiro-cancel", "Cancel");
  const kill = node("button", "wiro-kill", "Kill");
  cancel.type = kill.type = "button";
  cancel.title = "Cancel the task (a queued task is cancelled, a running one killed)";
  kill.title = "Kill the running task now";
  buttons.append(cancel, kill);
  head.append(name, state, elapsed, cost, queue, buttons);
  const steps = node("ol", "wiro-steps");
  const percent = node("div", "wiro-percent");
  const percentFill = node("div");
  percent.append(percentFill);
  const line = node("div", "wiro-status-line");
  const error = node("pre", "wiro-status-error");
  root.append(head, steps, percent, line, error);
  el.append(root);

  let stepNodes = [];
  let clicked = "";  // optimistic: disable at once, before the kernel answers with `busy`
  let syncedElapsed = 0;
  let syncedAt = performance.now();

  function buildSteps() {
    steps.replaceChildren();
    stepNodes = (model.get("stages") || []).map((s) => {
      const li = node("li", "wiro-step");
      li.dataset.stage = s.id;
      li.title = s.label;
      li.append(node("div", "wiro-step-bar"), node("div", "wiro-step-label", s.label));
      steps.append(li);
      return li;
    });
  }

  function currentElapsed() {
    const st = model.get("state");
    if (ENDED.has(st)) return model.get("elapsed");
    // Tick locally: from started_at when the browser's clock agrees with the kernel's, else from the
    // last value Python sent plus the time since it arrived.
    const fromStart = Date.now() / 1000 - model.get("started_at");
    const fromSync = syncedElapsed + (performance.now() - syncedAt) / 1000;
    return fromStart >= syncedElapsed - 1 && fromStart < syncedElapsed + 86400 ? fromStart : fromSync;
  }

  function tick() {
    elapsed.textContent = fmtSeconds(currentElapsed());
  }

  function update() {
    const st = model.get("state");
    const stage = model.get("stage");
    root.dataset.state = st;
    root.dataset.stage = String(stage);
    name.textContent = model.get("model") + (model.get("task_id") ? ` · task ${model.get("task_id")}` : "");
    const labels = { queued: "queued", running: "running", done: "done", failed: "failed", cancelled: "cancelled" };
    state.textContent = labels[st] || st;
    stepNodes.forEach((li, i) => {
      li.classList.toggle("reached", i < stage || (i === stage && ENDED.has(st)) || (i === stage && st === "done"));
      li.classList.toggle("current", i === stage && !ENDED.has(st));
    });
    const pct = model.get("percentage");
    percent.style.visibility = pct >= 0 && !ENDED.has(st) ? "visible" : "hidden";
    percentFill.style.width = `${Math.max(0, Math.min(100, pct))}%`;
    const c = model.get("cost");
    cost.textContent = c >= 0 ? `$${c.toFixed(4)}` : "";
    const q = model.get("queue_position");
    queue.textContent = q >= 0 && st === "queued" ? `queue position ${q}` : "";
    const bits = [];
    if (model.get("progress") && !ENDED.has(st)) bits.push(model.get("progress"));
    if (model.get("message")) bits.push(model.get("message"));
    if (model.get("notice")) bits.push(model.get("notice"));
    line.textContent = bits.join(" · ");
    error.textContent = model.get("error") || "";
    error.style.display = model.get("error") ? "block" : "none";
    const busy = model.get("busy") || clicked;
    const ended = ENDED.has(st);
    buttons.style.display = ended ? "none" : "";
    cancel.disabled = ended || !!busy;
    kill.disabled = ended || !!busy || st !== "running";
    cancel.textContent = busy === "cancel" ? "Cancelling…" : "Cancel";
    kill.textContent = busy === "kill" ? "Killing…" : "Kill";
    syncedElapsed = model.get("elapsed");
    syncedAt = performance.now();
    tick();
  }

  function send(action) {
    clicked = action;
    update();
    model.send({ action });
  }
  cancel.addEventListener("click", () => send("cancel"));
  kill.addEventListener("click", () => send("kill"));

  const onBusy = () => {
    if (!model.get("busy")) clicked = "";
    update();
  };
  buildSteps();
  update();
  const onStages = () => { buildSteps(); update(); };
  model.on("change:stages", onStages);
  model.on("change:busy", onBusy);
  const fields = ["state", "stage", "status", "elapsed", "started_at", "percentage", "progress", "message",
    "queue_position", "cost", "error", "notice", "model", "task_id"];
  for (const f of fields) model.on(`change:${f}`, update);
  const timer = setInterval(() => { if (!ENDED.has(model.get("state"))) tick(); }, 100);
  return () => {
    clearInterval(timer);
    model.off("change:stages", onStages);
    model.off("change:busy", onBusy);
    for (const f of fields) model.off(`change:${f}`, update);
  };
}

export default { render };
