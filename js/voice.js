// The realtime voice widget (wiro_jupyter.widgets._voice.VoiceView). Plain ES module, no build step;
// the stylesheet comes from Python (anywidget's `_css`).
// Traits are the whole contract with Python:
//   slug, task_id, state (idle | starting | live | closing | ended | failed), error, notice,
//   transcript [{speaker: "user" | "ai", text}], cost (-1: unknown), turns, interrupts,
//   barge_in, muted (both set here too), listens (capture the microphone), speaks (play the model's audio).
// To the kernel: {action: "start" | "stop" | "interrupt"}, and {action: "audio"} with one binary buffer of
//   PCM16 LE mono 24 kHz (100 ms). From the kernel: {kind: "audio"} with one buffer of the model's PCM16.
// Transcript text is untrusted model output: it is only ever set as textContent.
// For tests, the root element carries data-state, data-mic, data-sent-samples (sent to the kernel),
// data-received-samples and data-scheduled-samples (handed to the audio output).

const RATE = 24000;
const CHUNK = 2400; // samples per message to the kernel: 100 ms (the server takes frames of up to 200 ms)
const JITTER = 0.12; // seconds buffered before playback starts, so network jitter leaves no gaps
const BARGE_RMS = 0.04; // microphone level (RMS, 0..1) that counts as speaking over the model...
const BARGE_CHUNKS = 2; // ...for this many chunks in a row

// The capture runs on the audio thread: Float32 frames in, Int16 chunks of CHUNK samples and their RMS out.
const WORKLET = `
class WiroCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.size = options.processorOptions.chunk;
    this.buffer = new Int16Array(this.size);
    this.filled = 0;
    this.energy = 0;
  }
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.buffer[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      this.energy += s * s;
      if (this.filled === this.size) {
        const rms = Math.sqrt(this.energy / this.size);
        this.port.postMessage({ pcm: this.buffer.buffer, rms }, [this.buffer.buffer]);
        this.buffer = new Int16Array(this.size);
        this.filled = 0;
        this.energy = 0;
      }
    }
    return true;
  }
}
registerProcessor("wiro-capture", WiroCapture);
`;

let workletUrl = "";
function workletModule() {
  if (!workletUrl) workletUrl = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
  return workletUrl;
}

const STATES = {
  idle: "Press Start to talk",
  starting: "Starting the session…",
  live: "Live",
  closing: "Ending the session…",
  ended: "Session ended",
  failed: "Session ended early",
};

function button(cls, text, title) {
  const b = node("button", cls, text);
  b.type = "button";
  b.title = title;
  return b;
}

// Why the microphone cannot be used here, before asking for it ("" when it can be asked for).
function micUnavailable() {
  if (!window.isSecureContext) {
    return "The microphone needs a secure page: open Jupyter over https:// or on localhost / 127.0.0.1 " +
      "(browsers only allow getUserMedia there).";
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This browser gives no access to a microphone here.";
  }
  return "";
}

function micMessage(err) {
  const name = (err && err.name) || "";
  if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
    return "Microphone permission was denied. Allow the microphone for this page (the icon in the address bar), " +
      "then press Start again.";
  }
  if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
    return "No microphone was found. Connect one (and check the system's sound settings), then press Start again.";
  }
  if (name === "NotReadableError" || name === "TrackStartError") {
    return "The microphone could not be opened: another application may be using it.";
  }
  return `The microphone could not be started: ${(err && err.message) || err}`;
}

function render({ model, el }) {
  const root = node("div", "wiro-voice");
  const head = node("div", "wiro-voice-head");
  const title = node("span", "wiro-voice-title");
  const state = node("span", "wiro-voice-state");
  const cost = node("span", "wiro-voice-cost");
  head.append(title, state, cost);
  const bar = node("div", "wiro-voice-bar");
  const start = button("wiro-voice-start", "Start", "Start the session (asks for the microphone)");
  const stop = button("wiro-voice-stop", "Stop", "End the session on the server");
  const mute = button("wiro-voice-mute", "Mute", "Send silence instead of the microphone");
  const interrupt = button("wiro-voice-interrupt", "Interrupt", "Cut the model off");
  const meter = node("div", "wiro-voice-meter");
  const level = node("div", "wiro-voice-level");
  meter.append(level);
  meter.title = "Microphone level";
  const barge = node("label", "wiro-voice-barge");
  const bargeBox = node("input");
  bargeBox.type = "checkbox";
  barge.append(bargeBox, document.createTextNode(" barge-in"));
  barge.title = "Speaking while the model talks interrupts it";
  bar.append(start, stop, mute, interrupt, meter, barge);
  const message = node("div", "wiro-voice-message");
  const transcript = node("div", "wiro-voice-transcript");
  root.append(head, bar, message, transcript);
  el.append(root);

  let ctx = null; // one AudioContext at 24 kHz for capture and playback (it resamples the microphone)
  let stream = null;
  let capture = null;
  let micError = "";
  let clicked = false; // Start pressed: the kernel's state catches up
  let nextTime = 0;
  const playing = new Set();
  let loud = 0;
  let sent = 0;
  let received = 0;
  let scheduled = 0;

  function count() {
    root.dataset.sentSamples = String(sent);
    root.dataset.receivedSamples = String(received);
    root.dataset.scheduledSamples = String(scheduled);
  }

  async function audioContext() {
    if (!ctx) ctx = new AudioContext({ sampleRate: RATE });
    if (ctx.state === "suspended") await ctx.resume();
    return ctx;
  }

  // -- playback: a small jitter buffer, then each chunk right after the previous one
  function play(view) {
    const n = view.byteLength >> 1;
    received += n;
    if (!n || !ctx) return count();
    const samples = new Float32Array(n);
    for (let i = 0; i < n; i++) samples[i] = view.getInt16(2 * i, true) / 32768;
    const buffer = ctx.createBuffer(1, n, RATE);
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    if (nextTime < ctx.currentTime + 0.01) nextTime = ctx.currentTime + JITTER; // first chunk, or ran dry
    source.start(nextTime);
    nextTime += buffer.duration;
    playing.add(source);
    source.onended = () => playing.delete(source);
    scheduled += n;
    count();
  }

  function flush() {
    for (const source of playing) {
      try { source.stop(); } catch (e) { /* already stopped */ }
    }
    playing.clear();
    nextTime = 0;
  }

  function talking() {
    return ctx !== null && nextTime > ctx.currentTime;
  }

  // -- capture
  function onChunk({ pcm, rms }) {
    const muted = model.get("muted");
    const db = rms > 0 ? 20 * Math.log10(rms) : -100;
    level.style.width = `${muted ? 0 : Math.max(0, Math.min(100, (db + 60) * 100 / 60))}%`;
    if (model.get("state") !== "live") return;
    if (!muted && model.get("barge_in") && talking()) {
      loud = rms >= BARGE_RMS ? loud + 1 : 0;
      if (loud >= BARGE_CHUNKS) {
        loud = 0;
        cut();
      }
    }
    // Muted still streams (silence), so the server's voice detection sees the utterance end.
    const out = muted ? new Int16Array(CHUNK).buffer : pcm;
    model.send({ action: "audio" }, undefined, [out]);
    sent += CHUNK;
    count();
  }

  async function startCapture() {
    const problem = micUnavailable();
    if (problem) throw new Error(problem);
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (err) {
      throw new Error(micMessage(err));
    }
    const audio = await audioContext();
    if (!audio.audioWorklet) throw new Error("This browser cannot capture audio here (no AudioWorklet).");
    await audio.audioWorklet.addModule(workletModule());
    const source = audio.createMediaStreamSource(stream);
    const worklet = new AudioWorkletNode(audio, "wiro-capture", { processorOptions: { chunk: CHUNK } });
    const sink = audio.createGain(); // a silent path to the output keeps the worklet pulled
    sink.gain.value = 0;
    source.connect(worklet);
    worklet.connect(sink);
    sink.connect(audio.destination);
    worklet.port.onmessage = (event) => onChunk(event.data);
    capture = { source, worklet, sink };
    root.dataset.mic = "on";
  }

  function stopCapture() {
    if (capture) {
      capture.worklet.port.onmessage = null;
      capture.source.disconnect();
      capture.worklet.disconnect();
      capture.sink.disconnect();
      capture = null;
    }
    if (stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
    level.style.width = "0%";
    if (root.dataset.mic === "on") root.dataset.mic = "off";
  }

  async function onStart() {
    clicked = true;
    micError = "";
    update();
    try {
      await audioContext(); // inside the click: a user gesture lets audio play
      if (model.get("listens")) await startCapture();
    } catch (err) {
      stopCapture();
      clicked = false;
      micError = err.message || String(err);
      root.dataset.mic = "error";
      update();
      return; // no paid session without a microphone
    }
    model.send({ action: "start" });
  }

  function cut() {
    flush();
    model.send({ action: "interrupt" });
  }

  start.addEventListener("click", onStart);
  stop.addEventListener("click", () => {
    model.send({ action: "stop" });
    stopCapture();
    flush();
  });
  interrupt.addEventListener("click", cut);
  mute.addEventListener("click", () => {
    model.set("muted", !model.get("muted"));
    model.save_changes();
  });
  bargeBox.addEventListener("change", () => {
    model.set("barge_in", bargeBox.checked);
    model.save_changes();
  });
  root.addEventListener("click", () => {
    if (ctx && ctx.state === "suspended") ctx.resume();
  });

  function renderTranscript() {
    const lines = model.get("transcript") || [];
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 24;
    while (transcript.children.length > lines.length) transcript.lastChild.remove();
    lines.forEach((line, i) => {
      let row = transcript.children[i];
      if (!row) {
        row = node("div", "wiro-voice-line");
        row.append(node("span", "wiro-voice-who"), node("span", "wiro-voice-text"));
        transcript.append(row);
      }
      const speaker = line.speaker === "user" ? "user" : "ai";
      if (row.dataset.speaker !== speaker) {
        row.dataset.speaker = speaker;
        row.firstChild.textContent = speaker === "user" ? "You" : "AI";
      }
      const text = String(line.text ?? "");
      if (row.lastChild.textContent !== text) row.lastChild.textContent = text;
    });
    transcript.style.display = lines.length ? "" : "none";
    if (atBottom) transcript.scrollTop = transcript.scrollHeight;
  }

  function update() {
    const st = model.get("state");
    const live = st === "live";
    const over = st === "ended" || st === "failed";
    if (st !== "idle") clicked = false;
    root.dataset.state = st;
    if (!root.dataset.mic) root.dataset.mic = "off";
    title.textContent = model.get("slug") + (model.get("task_id") ? ` · task ${model.get("task_id")}` : "");
    let label = STATES[st] || st;
    if (live) label = model.get("listens") ? (model.get("muted") ? "Live · muted" : "Live · listening") : "Live";
    state.textContent = label;
    const c = model.get("cost");
    cost.textContent = c >= 0 ? `$${c.toFixed(4)}` : "";
    start.disabled = st !== "idle" || clicked;
    stop.disabled = !(st === "starting" || live);
    mute.disabled = !live || !model.get("listens");
    mute.textContent = model.get("muted") ? "Unmute" : "Mute";
    interrupt.disabled = !live || !model.get("speaks");
    bargeBox.checked = !!model.get("barge_in");
    barge.style.display = model.get("listens") && model.get("speaks") ? "" : "none";
    meter.style.display = model.get("listens") ? "" : "none";
    const error = model.get("error") || micError;
    message.textContent = error || model.get("notice") || (over ? "Run the cell again for a new session." : "");
    message.dataset.kind = error ? "error" : "notice";
    message.style.display = message.textContent ? "" : "none";
    if (over) stopCapture();
    if (st === "failed") flush();
  }

  function onMessage(msg, buffers) {
    if (!msg || msg.kind !== "audio" || !buffers || !buffers.length) return;
    const b = buffers[0];
    const view = b instanceof DataView ? b : new DataView(b.buffer || b, b.byteOffset || 0, b.byteLength);
    if (!ctx) audioContext().catch(() => {}); // started from code: play once the browser allows it
    if (ctx && ctx.state === "suspended" && !model.get("notice")) {
      message.textContent = "Click the widget to hear the model.";
      message.style.display = "";
    }
    play(view);
  }

  const fields = ["state", "error", "notice", "cost", "slug", "task_id", "muted", "barge_in", "listens", "speaks"];
  for (const f of fields) model.on(`change:${f}`, update);
  model.on("change:transcript", renderTranscript);
  model.on("change:interrupts", flush);
  model.on("msg:custom", onMessage);
  count();
  update();
  renderTranscript();
  return () => {
    for (const f of fields) model.off(`change:${f}`, update);
    model.off("change:transcript", renderTranscript);
    model.off("change:interrupts", flush);
    model.off("msg:custom", onMessage);
    stopCapture();
    flush();
    if (ctx) ctx.close();
  };
}

export default { render };
