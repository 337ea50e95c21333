// anima browser chat: one RTCPeerConnection (mic up, avatar audio + video down) and an
// "events" data channel (transcripts, subtitles, state, latency; typed questions up).
// Voice-to-face latency is measured here, where the user is: the end of the user's speech on
// the local mic to the first sound of the avatar's reply as received (after the jitter buffer).
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token");          // given by the operator's backend off loopback
const MIC_THRESHOLD = 0.01;                 // RMS (of 1.0) that counts as the user speaking
const REPLY_THRESHOLD = 0.005;              // RMS of received audio that counts as the avatar
const END_SILENCE_MS = 300;                 // mic silence that ends the user's speech
const REPLY_GAP_MS = 600;                   // avatar silence that ends its speech

// The page's language: ?lang= first, else the browser's (zh-CN, en-GB…); strings come from the
// server's language packs, English for anything they lack.
const i18n = { lang: "en", strings: {} };
const t = (key, fallback) => i18n.strings[key] || fallback;

async function localise() {
  const wanted = params.get("lang") || navigator.language || "en";
  try {
    const r = await fetch("/api/strings?lang=" + encodeURIComponent(wanted));
    if (!r.ok) return;
    const body = await r.json();
    i18n.lang = body.lang; i18n.strings = body.strings;
  } catch (e) { return; }
  document.documentElement.lang = i18n.lang === "zh" ? "zh-CN" : i18n.lang;
  if (i18n.strings.title) document.title = i18n.strings.title;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, el.textContent);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder, el.placeholder);
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle, el.title);
}
localise();

const anima = window.anima = {
  pc: null, dc: null, sessionId: null, stream: null, latencies: [], server: [],
  events: [], state: "idle", connected: false,
};

function authHeaders() {
  const h = { "Content-Type": "application/json" };
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

function showError(message) { $("error").textContent = message || ""; }

function addLine(who, text) {
  const li = document.createElement("li");
  li.className = who;
  li.textContent = text;
  $("transcript").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: authHeaders() });
  if (!r.ok) {
    let message = r.status + " " + r.statusText;
    try { message = (await r.json()).message || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return r.status === 204 ? null : r.json();
}

async function loadConfig() {
  const config = await api("/api/config");
  const select = $("avatar");
  select.replaceChildren(...config.avatars.map((name) => new Option(name, name)));
  const wanted = params.get("avatar");
  if (wanted) select.value = wanted;
  return config;
}

// --- measuring voice-to-face latency ---------------------------------------------------
function rmsMeter(ctx, stream) {
  const source = ctx.createMediaStreamSource(stream);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;  // ~10 ms at 48 kHz
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  return () => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    return Math.sqrt(sum / buf.length);
  };
}

function startLatencyMeter(micStream, remoteStream) {
  const ctx = new AudioContext();
  ctx.resume();
  const mic = rmsMeter(ctx, micStream);
  const remote = rmsMeter(ctx, remoteStream);
  let userSpeaking = false, lastVoice = 0, speechEnd = null;
  let replying = false, lastReply = 0;
  anima.meterTimer = setInterval(() => {
    const now = performance.now();
    if (mic() > MIC_THRESHOLD) {
      userSpeaking = true; lastVoice = now;
    } else if (userSpeaking && now - lastVoice > END_SILENCE_MS) {
      userSpeaking = false; speechEnd = lastVoice;
    }
    if (remote() > REPLY_THRESHOLD) {
      if (!replying && speechEnd !== null && !userSpeaking) {
        const ms = now - speechEnd;
        anima.latencies.push(ms);
        $("v2f").textContent = Math.round(ms) + " ms (median " + Math.round(median(anima.latencies)) + ")";
        speechEnd = null;
      }
      replying = true; lastReply = now;
    } else if (replying && now - lastReply > REPLY_GAP_MS) {
      replying = false;
    }
  }, 5);
  anima.audioContext = ctx;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
}

// --- events from the server ------------------------------------------------------------
let partialLine = null, replyLine = null;

function onEvent(msg) {
  anima.events.push(msg);
  switch (msg.type) {
    case "ready": anima.sessionId = msg.session_id; break;
    case "state":
      anima.state = msg.state; $("state").textContent = t(msg.state, msg.state);
      if (msg.state === "listening" || msg.state === "idle") replyLine = null;
      break;
    case "transcript":
      $("heard").textContent = msg.final ? "" : msg.text;
      if (msg.final && msg.text) {
        if (partialLine) partialLine.remove();
        partialLine = null;
        addLine("user", msg.text);
        replyLine = null;
      }
      break;
    case "subtitle":
      $("subtitle").textContent = msg.text;
      if (!replyLine) replyLine = addLine("avatar", msg.text);
      else replyLine.textContent += " " + msg.text;
      break;
    case "interrupted": $("subtitle").textContent = ""; replyLine = null; break;
    case "latency": {
      anima.server.push(msg.parts);
      const p = msg.parts;
      $("server-latency").textContent = Object.keys(p).map((k) => k + " " + Math.round(p[k] * 1000)).join(" · ") + " ms";
      break;
    }
    case "pong": $("rtt").textContent = Math.round(performance.now() - msg.t) + " ms"; break;
    case "handoff": addLine("avatar", "(asking a member of staff to help)"); break;
    case "error": showError(msg.stage + ": " + msg.message); break;
    case "closed": case "idle_timeout": hangUp(msg.reason || "idle timeout", false); break;
  }
}

// --- the call --------------------------------------------------------------------------
function waitForIce(pc, ms) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, ms);  // send what we have; later candidates trickle
  });
}

async function start() {
  showError("");
  $("start").disabled = true;
  try {
    const config = await loadConfig();
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    anima.stream = stream;
    const pc = new RTCPeerConnection({ iceServers: config.ice_servers });
    anima.pc = pc;
    const remote = new MediaStream();
    $("video").srcObject = remote;
    pc.addTransceiver(stream.getAudioTracks()[0], { direction: "sendrecv" });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (e) => {
      remote.addTrack(e.track);
      if (e.track.kind === "audio") startLatencyMeter(stream, new MediaStream([e.track]));
      $("video").play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      $("conn").textContent = pc.connectionState;
      anima.connected = pc.connectionState === "connected";
      if (pc.connectionState === "failed") hangUp("connection failed", true);
      if (pc.connectionState === "disconnected") checkLost(pc);
    };
    const dc = pc.createDataChannel("events");
    anima.dc = dc;
    dc.onmessage = (e) => onEvent(JSON.parse(e.data));
    dc.onopen = () => {
      setControls(true);
      anima.pingTimer = setInterval(() => dc.send(JSON.stringify({ type: "ping", t: performance.now() })), 2000);
    };
    const late = [];
    pc.onicecandidate = (e) => { if (e.candidate) late.push(e.candidate); };
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc, 2000);
    late.length = 0;  // those are in the offer now
    const answer = await api("/api/offer", {
      method: "POST",
      body: JSON.stringify({
        sdp: pc.localDescription.sdp, type: "offer", avatar: $("avatar").value || null, token,
        greet: params.get("greet") !== "0", drive: $("drive").checked,
      }),
    });
    anima.sessionId = answer.session_id;
    pc.onicecandidate = (e) => {
      if (e.candidate) api(`/api/sessions/${answer.session_id}/ice`, { method: "POST", body: JSON.stringify(e.candidate.toJSON()) }).catch(() => {});
    };
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    $("conn").textContent = pc.connectionState;
  } catch (err) {
    showError(err.message || String(err));
    hangUp("", true);
  }
}

// Behind an `anima gateway`, a worker that dies is reported "lost" within seconds: reconnect
// with a new offer, which the gateway sends to another worker. (A one-time ?token= cannot be
// used twice: the page then shows the gateway's error and a fresh token is needed.)
async function checkLost(pc) {
  const sid = anima.sessionId;
  for (let i = 0; i < 10 && anima.pc === pc && pc.connectionState === "disconnected"; i++) {
    try {
      const s = await api(`/api/sessions/${sid}`);
      if (s && s.state === "lost") {
        hangUp("the server was lost; reconnecting", false);
        start();
        return;
      }
    } catch (e) { /* not behind a gateway, or the session is gone: the usual failure path */ }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function setControls(live) {
  $("start").disabled = live;
  $("stop").disabled = !live;
  $("interrupt").disabled = !live;
  const talks = live && !$("drive").checked;  // a driven avatar only says what the mic says
  $("text").disabled = !talks;
  $("send").disabled = !talks;
  $("drive").disabled = live;
}

function hangUp(reason, tellServer) {
  if (tellServer && anima.dc && anima.dc.readyState === "open") anima.dc.send(JSON.stringify({ type: "bye" }));
  clearInterval(anima.pingTimer);
  clearInterval(anima.meterTimer);
  if (anima.audioContext) anima.audioContext.close();
  if (anima.pc) anima.pc.close();
  if (anima.stream) anima.stream.getTracks().forEach((t) => t.stop());
  anima.pc = anima.dc = anima.stream = anima.audioContext = null;
  anima.connected = false;
  $("conn").textContent = reason ? "closed (" + reason + ")" : "not connected";
  setControls(false);
}

$("start").onclick = start;
$("stop").onclick = () => hangUp("hung up", true);
$("interrupt").onclick = () => anima.dc && anima.dc.send(JSON.stringify({ type: "interrupt" }));
$("ask").onsubmit = (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !anima.dc) return;
  anima.dc.send(JSON.stringify({ type: "ask", text }));
  addLine("user", text);
  $("text").value = "";
};
// Closing the tab: tell the server at once so it stops encoding (the beacon survives unload).
window.addEventListener("pagehide", () => {
  if (!anima.sessionId) return;
  const q = token ? "?token=" + encodeURIComponent(token) : "";
  navigator.sendBeacon(`/api/sessions/${anima.sessionId}/close${q}`);
});
loadConfig().catch((err) => showError(err.message));
if (params.get("drive") === "1") $("drive").checked = true;
if (params.get("autostart") === "1") start();
