// anima kiosk protocol v1 client, "params" mode: audio + face parameters (docs/protocol.md).
"use strict";

const $ = (id) => document.getElementById(id);
const ctx = $("face").getContext("2d");
const HEADER = 16; // kind u8, flags u8, reserved u16, turn u32, pts u64 (little-endian)

let ws = null, audio = null, rate = 22050, fps = 25;
let startPts = null, startTime = 0;        // audio clock: pts startPts plays at startTime
const faces = new Map();                    // frame index -> face parameters
let mic = null;

function log(text) {
  const line = document.createElement("div");
  line.textContent = text;
  $("log").prepend(line);
}

function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }

function connect() {
  audio = audio || new AudioContext();
  if (ws && ws.readyState <= 1) ws.close(1000, "reconnect");
  ws = new WebSocket($("url").value);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => send({ type: "hello", version: 1, media: "params",
    audio: { format: "s16le", rate: 16000, channels: 1 }, greet: true });
  ws.onmessage = (e) => (typeof e.data === "string" ? onJson(JSON.parse(e.data)) : onMedia(e.data));
  const mine = ws;
  ws.onclose = (e) => {
    log(`closed ${e.code} ${e.reason}`);
    if (ws === mine) enable(false);
  };
}

function enable(on) {
  for (const id of ["mic", "ask", "say", "interrupt", "present"]) $(id).disabled = !on;
}

function onJson(m) {
  switch (m.type) {
    case "welcome":
      rate = m.output.audio.rate; fps = m.output.fps;
      enable(true); log(`session ${m.session}`); break;
    case "face":
      faces.set(m.index, m);
      document.body.dataset.faces = String(Number(document.body.dataset.faces || 0) + 1);
      if (faces.size > fps * 10) faces.delete(faces.keys().next().value); // bounded
      break;
    case "state": $("state").textContent = m.state; break;
    case "subtitle": $("subtitle").textContent = m.text; break;
    case "transcript": if (m.final) log(`you: ${m.text}`); break;
    case "latency": log(`latency ${JSON.stringify(m.parts)}`); break;
    default: log(JSON.stringify(m));
  }
}

function onMedia(buf) {
  const view = new DataView(buf);
  if (view.getUint8(0) !== 1) return; // audio only in params mode
  const pts = Number(view.getBigUint64(8, true));
  const pcm = new Int16Array(buf, HEADER);
  const floats = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) floats[i] = pcm[i] / 32768;
  const clip = audio.createBuffer(1, floats.length, rate);
  clip.copyToChannel(floats, 0);
  const node = audio.createBufferSource();
  node.buffer = clip;
  node.connect(audio.destination);
  // Audio is the master clock: schedule each chunk at its pts, 150 ms behind real time.
  if (startPts === null || audio.currentTime > startTime + (pts - startPts) / rate + 0.5) {
    startPts = pts; startTime = audio.currentTime + 0.15; // first chunk, or we fell behind
  }
  node.start(Math.max(audio.currentTime, startTime + (pts - startPts) / rate));
}

function draw() {
  // Show the face of the frame whose audio is playing now.
  if (startPts !== null) {
    const playing = startPts + (audio.currentTime - startTime) * rate;
    const index = Math.floor((playing * fps) / rate);
    const face = faces.get(index) || faces.get(index - 1);
    if (face) drawFace(ctx, face);
    for (const k of faces.keys()) if (k < index - fps) faces.delete(k);
  }
  requestAnimationFrame(draw);
}

async function toggleMic() {
  if (mic) { mic.stop(); mic = null; $("mic").textContent = "Microphone on"; return; }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
  const source = audio.createMediaStreamSource(stream);
  const proc = audio.createScriptProcessor(4096, 1, 1);
  const ratio = audio.sampleRate / 16000;
  proc.onaudioprocess = (e) => {
    const x = e.inputBuffer.getChannelData(0);
    const out = new Int16Array(Math.floor(x.length / ratio));
    for (let i = 0; i < out.length; i++) {
      out[i] = Math.max(-1, Math.min(1, x[Math.floor(i * ratio)])) * 32767; // nearest-sample downsampling
    }
    if (ws && ws.readyState === 1) ws.send(out.buffer);
  };
  source.connect(proc); proc.connect(audio.destination);
  mic = { stop() { proc.disconnect(); source.disconnect(); stream.getTracks().forEach((t) => t.stop()); } };
  $("mic").textContent = "Microphone off";
}

$("connect").onclick = connect;
$("mic").onclick = toggleMic;
$("ask").onclick = () => send({ type: "ask", text: $("text").value });
$("say").onclick = () => send({ type: "say", text: $("text").value });
$("interrupt").onclick = () => send({ type: "interrupt" });
$("present").onchange = (e) => send({ type: "presence", present: e.target.checked });
requestAnimationFrame(draw);
// ?url=ws://…&autoconnect=1 connects at once (kiosk screens, headless checks).
const query = new URLSearchParams(location.search);
if (query.get("url")) $("url").value = query.get("url");
if (query.get("autoconnect")) connect();
