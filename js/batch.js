// The live progress of a Wiro batch (wiro_jupyter.widgets.BatchView).
// Plain ES module, no build step; styles come from the widget's `_css`. Traits are the whole contract:
//   model, name, total, ok, failed, skipped, cancelled, running, waiting, spent, budget (-1: none),
//   limit, concurrency, started_at, elapsed, throughput (items/min, -1: unknown), eta (s, -1: unknown),
//   state (running | stopping | done | stopped), busy ("stop" while a stop is in flight), notice,
//   thumbnails [{index, name, src}] (src: a data: URL made by the kernel).
// The Stop button sends {action: "stop"} as a custom message.

const ENDED = new Set(["done", "stopped"]);
const SEGMENTS = ["ok", "failed", "cancelled", "skipped", "running"];

function render({ model, el }) {
  const root = node("div", "wiro-batch");
  const head = node("div", "wiro-batch-head");
  const title = node("span", "wiro-batch-title");
  const state = node("span", "wiro-batch-state");
  const stop = node("button", "wiro-batch-stop", "Stop");
  stop.type = "button";
  stop.title = "Send no more items and stop the tasks in flight (cancel when queued, kill when running)";
  head.append(title, state, stop);
  const bar = node("div", "wiro-batch-bar");
  const segments = {};
  for (const name of SEGMENTS) {
    segments[name] = node("div", `wiro-batch-seg wiro-batch-${name}`);
    bar.append(segments[name]);
  }
  const counts = node("div", "wiro-batch-counts");
  const meta = node("div", "wiro-batch-meta");
  const notice = node("div", "wiro-batch-notice");
  const thumbs = node("div", "wiro-batch-thumbs");
  root.append(head, bar, counts, meta, notice, thumbs);
  el.append(root);

  let clicked = false; // optimistic: disable at once, before the kernel answers with `busy`
  let shown = 0; // thumbnails already in the page (the list only grows)

  function elapsed() {
    if (ENDED.has(model.get("state"))) return model.get("elapsed");
    return Math.max(model.get("elapsed"), Date.now() / 1000 - model.get("started_at"));
  }

  function updateMeta() {
    const bits = [];
    const budget = model.get("budget");
    bits.push(`$${model.get("spent").toFixed(4)}` + (budget >= 0 ? ` of $${budget}` : " spent"));
    bits.push(fmtSeconds(elapsed(), 0));
    const pace = model.get("throughput");
    if (pace >= 0) bits.push(`${pace.toFixed(1)} items/min`);
    const eta = model.get("eta");
    if (eta >= 0 && !ENDED.has(model.get("state"))) bits.push(`about ${fmtSeconds(eta, 0)} left`);
    if (model.get("limit") < model.get("concurrency")) {
      bits.push(`${model.get("limit")} at once (the account's limit; asked ${model.get("concurrency")})`);
    }
    meta.textContent = bits.join(" · ");
  }

  function update() {
    const st = model.get("state");
    root.dataset.state = st;
    title.textContent = `${model.get("model")} · batch ${model.get("name")}`;
    state.textContent = st;
    const total = Math.max(1, model.get("total"));
    for (const name of SEGMENTS) segments[name].style.width = `${(100 * model.get(name)) / total}%`;
    const parts = [`${model.get("ok") + model.get("failed") + model.get("skipped") + model.get("cancelled")}/${model.get("total")} done`];
    for (const name of ["ok", "failed", "cancelled", "skipped", "running", "waiting"]) {
      if (model.get(name)) parts.push(`${model.get(name)} ${name}`);
    }
    counts.textContent = parts.join(" · ");
    updateMeta();
    notice.textContent = model.get("notice") || "";
    notice.style.display = model.get("notice") ? "block" : "none";
    const busy = !!model.get("busy") || clicked || st === "stopping";
    stop.style.display = ENDED.has(st) ? "none" : "";
    stop.disabled = busy;
    stop.textContent = busy ? "Stopping…" : "Stop";
    const list = model.get("thumbnails") || [];
    for (const t of list.slice(shown)) {
      const src = embedded(t.src); // only a data: URL of a raster image the kernel made
      if (!src.startsWith("data:image/")) continue;
      const img = node("img", "wiro-batch-thumb");
      img.src = src;
      img.alt = img.title = `#${t.index} ${t.name}`;
      thumbs.append(img);
    }
    shown = list.length;
  }

  stop.addEventListener("click", () => {
    clicked = true;
    update();
    model.send({ action: "stop" });
  });

  const fields = ["model", "name", "total", "ok", "failed", "skipped", "cancelled", "running", "waiting", "spent",
    "budget", "limit", "concurrency", "elapsed", "throughput", "eta", "state", "busy", "notice", "thumbnails"];
  for (const f of fields) model.on(`change:${f}`, update);
  update();
  const timer = setInterval(() => { if (!ENDED.has(model.get("state"))) updateMeta(); }, 1000);
  return () => {
    clearInterval(timer);
    for (const f of fields) model.off(`change:${f}`, update);
  };
}

export default { render };
