// The room: the browser's audio leg over WebRTC, signalled over the room's WebSocket and reconnecting by itself
// after a network blip; the participants, the lobby, hands, the chat and the settings, as the bridge pushes them
// (web/protocol.py says every message); cameras and screens through Janus (room-video.js). Plain ES modules.

import { appendText, badge, chime, panelOpen } from "./room-ui.js";
import { initBoard } from "./room-board.js";
import { initFiles } from "./room-files.js";
import { initPresent } from "./room-present.js";
import { initVideo } from "./room-video.js";

const config = JSON.parse(document.getElementById("room-config").textContent);
const texts = JSON.parse(document.getElementById("texts").textContent);
const status = document.getElementById("connection");
const remote = document.getElementById("remote");
const title = document.title;
let microphone = null;
let attempt = 0;
let current = null;
let pc = null;
let muted = false;
let hand = false;
let refused = false;
let myId = null;  // this page's leg in the participant list (the bridge's "welcome")
let people = [];
let privateChat = true;
// Given by the bridge once in the room: shown again on reconnecting, it goes straight back in (not the lobby).
const passKey = `passerelle-pass:${config.socket}`;

function send(message) {
  if (current && current.readyState === WebSocket.OPEN) current.send(JSON.stringify(message));
}

function say(text, kind) {
  status.textContent = text;
  status.className = "status " + (kind || "");
}

function announce(text) {
  document.getElementById("announce").textContent = text;
}

function nameOf(p) {
  return p.label || (p.kind === "sip" ? texts.phone : texts.someone);
}

// -- participants ---------------------------------------------------------------------------------------------
// The list is updated in place (one item per participant, kept), not rebuilt: it is not a live region, so a
// screen reader is not read the whole list at every change of who is speaking; arrivals, departures and raised
// hands are said once, in #announce. The stage's tiles follow the same way.

const items = new Map();
const tiles = new Map();
const notes = () => board;  // the board's layers over presented pages and paused screens (made below)
const video = initVideo({ send, texts, config, tiles, nameOf, announce, notes });
const present = initPresent({ send, config, texts, onStage: () => video.refresh(), notes });
const files = initFiles({ send, config, texts, badge, announce, onPresent: (id) => present.present(id) });
const board = initBoard({ send, config, texts, onStage: () => video.refresh(), files });
let listed = false;

function hostButton(li, action, label, who) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "small secondary";
  button.dataset.action = action;
  button.textContent = label;
  button.setAttribute("aria-label", `${label} — ${who}`);
  button.addEventListener("click", () => {
    const p = people.find((q) => q.id === li.dataset.id);
    if (!p) return;
    if (action === "take-out" && !window.confirm(texts.take_out_confirm.replace("{name}", nameOf(p)))) return;
    send({ type: action === "take-out" ? "remove" : action, leg: p.id });
  });
  return button;
}

function pinButton(li, who) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "small secondary";
  button.dataset.action = "pin";
  button.textContent = texts.pin;
  button.setAttribute("aria-label", `${texts.pin} — ${who}`);
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", () => video.pin(li.dataset.id));
  return button;
}

function listItem(p) {
  const li = document.createElement("li");
  const who = document.createElement("span");
  who.className = "who";
  li.append(who);
  if (p.id !== myId) {
    const actions = document.createElement("span");
    actions.className = "row-actions";
    actions.append(pinButton(li, nameOf(p)));
    if (config.host) {
      actions.append(hostButton(li, "mute-other", texts.mute_other, nameOf(p)),
                     hostButton(li, "lower-hand", texts.lower_hand, nameOf(p)),
                     hostButton(li, "take-out", texts.take_out, nameOf(p)));
    }
    li.append(actions);
  }
  return li;
}

function tile(p) {
  const element = document.createElement("li");
  element.className = "tile";
  if (p.id) element.addEventListener("click", () => video.pin(p.id));  // the list's "Pin", for a mouse
  const initials = document.createElement("span");
  initials.className = "avatar";
  const label = document.createElement("span");
  label.className = "tile-name";
  const state = document.createElement("span");
  state.className = "tile-state";
  element.append(initials, label, state);
  return element;
}

function showParticipants(list, byPhone) {
  people = list;
  const ul = document.getElementById("participants");
  const stage = document.getElementById("tiles");
  const present = new Set();
  list.forEach((p, index) => {
    p.you = p.id === myId;
    present.add(p.id);
    const who = nameOf(p);
    let li = items.get(p.id);
    if (!li) {
      li = listItem(p);
      items.set(p.id, li);
      tiles.set(p.id, tile(p));
      if (listed && !p.you) announce(texts.joined.replace("{name}", who));
    } else if (p.hand && li.dataset.hand !== "yes" && !p.you) {
      announce(texts.raised_hand.replace("{name}", who));
    }
    const stateOf = { kind: p.kind, speaking: p.speaking ? "yes" : "no", muted: p.muted ? "yes" : "no",
                      hand: p.hand ? "yes" : "no", id: p.id, line: p.line || "" };
    const where = p.kind === "sip" ? texts.by_phone : texts.on_web;
    const line = p.line === "weak" || p.line === "poor" ? " · " + texts[`line_${p.line}`] : "";  // a phone's line
    const text = `${who}${p.you ? " (" + texts.you + ")" : ""} · ${where}` + line +
      (p.muted ? " · " + texts.muted : "") + (p.hand ? " · " + texts.hand_raised : "") +
      (p.speaking ? " · " + texts.speaking : "");
    const span = li.querySelector(".who");
    if (span.textContent !== text) span.textContent = text;
    const square = tiles.get(p.id);
    for (const element of [li, square]) {
      for (const [key, value] of Object.entries(stateOf)) {
        if (element.dataset[key] !== value) element.dataset[key] = value;
      }
    }
    const mute = li.querySelector('[data-action="mute-other"]');
    if (mute) mute.disabled = p.muted;
    const lower = li.querySelector('[data-action="lower-hand"]');
    if (lower) lower.hidden = !p.hand;
    square.querySelector(".avatar").textContent = p.kind === "sip" ? "☎" : (who.trim()[0] || "?").toUpperCase();
    square.querySelector(".tile-name").textContent = who + (p.you ? ` (${texts.you})` : "");
    square.querySelector(".tile-state").textContent =
      [p.muted ? texts.muted : "", p.hand ? "✋" : ""].filter(Boolean).join(" ");
    if (ul.children[index] !== li) ul.insertBefore(li, ul.children[index] || null);
    if (stage.children[index] !== square) stage.insertBefore(square, stage.children[index] || null);
  });
  for (const [id, li] of items) {
    if (present.has(id)) continue;
    announce(texts.left.replace("{name}", li.querySelector(".who").textContent.split(" · ")[0]));
    li.remove();
    tiles.get(id)?.remove();
    items.delete(id);
    tiles.delete(id);
  }
  listed = true;
  badge("people-count", list.length);
  document.getElementById("by-phone-count").textContent =
    byPhone ? texts.by_phone_count.replace("{count}", String(byPhone)) : "";
  const me = list.find((p) => p.you);
  if (me && me.hand !== hand) setHand(me.hand, false);
  updateRecipients();
  video.participants(list);
}

// -- phones a host calls in ------------------------------------------------------------------------------------

const callTiles = new Map();  // call id → its tile on the stage

function showCalls(list) {
  const ul = document.getElementById("calls");
  const stage = document.getElementById("tiles");
  const present = new Set(list.map((c) => c.id));
  ul.replaceChildren(...list.map((c) => {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    li.dataset.state = c.state;
    li.textContent = `${c.label} · ${texts[`call_${c.state}`] || texts.call_failed}`;
    let square = callTiles.get(c.id);
    if (!square) {
      square = tile({});
      square.dataset.kind = "call";
      callTiles.set(c.id, square);
      stage.append(square);
    }
    square.dataset.state = c.state;
    square.querySelector(".avatar").textContent = "☎";
    square.querySelector(".tile-name").textContent = c.label;
    square.querySelector(".tile-state").textContent = texts[`call_${c.state}`] || texts.call_failed;
    return li;
  }));
  for (const [id, square] of callTiles) {
    if (present.has(id)) continue;
    square.remove();
    callTiles.delete(id);
  }
}

document.getElementById("call")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const number = document.getElementById("call-number");
  document.getElementById("call-error").textContent = "";
  send({ type: "call", number: number.value.trim() });
  number.value = "";
});

// -- the lobby (hosts) ----------------------------------------------------------------------------------------

let waitingBefore = 0;

function showLobby(list) {
  const ul = document.getElementById("lobby");
  if (!ul) return;
  if (list.length > waitingBefore) chime();
  waitingBefore = list.length;
  badge("lobby-count", list.length);
  document.title = list.length ? `(${list.length}) ${texts.someone_waiting.replace("{count}", list.length)} · ${title}`
                               : title;
  if (!list.length) {
    const li = document.createElement("li");
    li.textContent = texts.nobody_waiting;
    ul.replaceChildren(li);
    return;
  }
  ul.replaceChildren(...list.map((w) => {
    const li = document.createElement("li");
    li.dataset.leg = w.id;
    li.append(w.label || texts.phone, " ");
    for (const [action, label] of [["admit", texts.admit], ["deny", texts.deny]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "small";
      button.textContent = label;
      button.dataset.action = action;
      button.setAttribute("aria-label", `${label} — ${w.label || texts.phone}`);
      button.addEventListener("click", () => {
        send({ type: action, leg: w.id });
        button.disabled = true;
      });
      li.append(button, " ");
    }
    return li;
  }));
}

// -- the chat ---------------------------------------------------------------------------------------------------

const chat = document.getElementById("chat");
const shown = new Map();  // message id → its item
let unread = 0;

function showMessage(m, { live = true } = {}) {
  if (shown.has(m.id)) return;
  const li = document.createElement("li");
  li.dataset.id = m.id;
  if (m.to) li.className = "private";
  const head = document.createElement("p");
  head.className = "chat-head";
  const name = document.createElement("strong");
  name.textContent = m.from === myId ? `${m.name} (${texts.you})` : m.name;
  head.append(name);
  if (m.to) {
    const other = m.from === myId ? people.find((p) => p.id === m.to)?.label || m.to_name : null;
    head.append(" · ", other ? texts.privately.replace("{name}", other) : texts.private_from);
  }
  const time = document.createElement("time");
  time.dateTime = m.at;
  time.textContent = new Date(m.at).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit",
                                                                                        minute: "2-digit" });
  head.append(" ", time);
  const body = document.createElement("p");
  body.className = "chat-text";
  appendText(body, m.text);
  li.append(head, body);
  if (config.host) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link";
    remove.textContent = texts.delete;
    remove.addEventListener("click", () => send({ type: "chat-delete", id: m.id }));
    li.append(remove);
  }
  chat.append(li);
  shown.set(m.id, li);
  document.getElementById("chat-empty").hidden = true;
  li.scrollIntoView({ block: "nearest" });
  if (live && m.from !== myId && !panelOpen("chat")) {
    unread += 1;
    badge("unread", unread);
    announce(texts.new_message.replace("{name}", m.name));
  }
}

function clearChat() {
  chat.replaceChildren();
  shown.clear();
  document.getElementById("chat-empty").hidden = false;
}

document.addEventListener("panel", (event) => {
  if (event.detail === "chat") {
    unread = 0;
    badge("unread", 0);
  }
});

function updateRecipients() {
  const select = document.getElementById("chat-to");
  const chosen = select.value;
  const others = people.filter((p) => p.kind !== "sip" && !p.you);
  const options = [["", texts.everyone], ...((privateChat || config.host) ? others.map((p) => [p.id, nameOf(p)])
                                                                           : [])];
  const same = select.options.length === options.length &&
    options.every(([value, label], i) => select.options[i].value === value && select.options[i].text === label);
  if (same) return;
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  select.value = options.some(([value]) => value === chosen) ? chosen : "";
}

document.getElementById("chat-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const area = document.getElementById("chat-text");
  const text = area.value.trim();
  if (!text) return;
  const to = document.getElementById("chat-to").value || null;
  send({ type: "chat", text, to });
  area.value = "";
  document.getElementById("chat-error").textContent = "";
});
document.getElementById("chat-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {  // Enter sends, Shift+Enter is a new line
    event.preventDefault();
    document.getElementById("chat-form").requestSubmit();
  }
});
document.getElementById("chat-clear")?.addEventListener("click", () => {
  if (window.confirm(texts.clear_confirm)) send({ type: "chat-clear" });
});
document.getElementById("private-chat")?.addEventListener("change", (event) => {
  send({ type: "settings", private_chat: event.currentTarget.checked });
});
document.getElementById("lock")?.addEventListener("change", (event) => {
  send({ type: "settings", locked: event.currentTarget.checked });
});
document.getElementById("guests-invite")?.addEventListener("change", (event) => {
  send({ type: "settings", guests_invite: event.currentTarget.checked });
});
document.getElementById("invite").addEventListener("submit", (event) => {
  event.preventDefault();
  const address = document.getElementById("invite-address");
  const message = document.getElementById("invite-message");
  document.getElementById("invite-error").textContent = "";
  send({ type: "invite", address: address.value.trim(), message: message.value.trim() || null });
  address.value = "";
  message.value = "";
});

document.getElementById("rename").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = document.getElementById("display-name").value.trim();
  if (name) send({ type: "name", name });
});

// -- the toolbar ------------------------------------------------------------------------------------------------

function setMuted(value) {
  muted = value;
  const button = document.getElementById("mute");
  if (!button) return;
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = muted ? button.dataset.on : button.dataset.off;
}

function setHand(value, tell = true) {
  hand = value;
  const button = document.getElementById("hand");
  button.setAttribute("aria-pressed", String(hand));
  button.textContent = hand ? button.dataset.on : button.dataset.off;
  if (tell) send({ type: "hand", raised: hand });
}

document.getElementById("mute")?.addEventListener("click", () => {
  setMuted(!muted);
  send({ type: "mute", muted });
});
document.getElementById("hand").addEventListener("click", () => setHand(!hand));

// -- settings: devices and the network --------------------------------------------------------------------------

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (id, kind, track) => {
    const select = document.getElementById(id);
    if (!select) return;
    const own = devices.filter((d) => d.kind === kind);
    const using = track?.getSettings().deviceId;
    select.replaceChildren(...own.map((d, i) => new Option(d.label || `${texts.default_device} ${i + 1}`,
                                                           d.deviceId)));
    if (using) select.value = using;
  };
  fill("mic-select", "audioinput", microphone?.getAudioTracks()[0]);
  fill("camera-select", "videoinput", window.passerelleVideo?.camera?.stream.getVideoTracks()[0]);
  if ("setSinkId" in HTMLMediaElement.prototype) {
    document.getElementById("speaker-row").hidden = false;
    fill("speaker-select", "audiooutput", null);
    document.getElementById("speaker-select").value = remote.sinkId || "default";
  }
}

// A device changed during the call: its new track replaces the old one in the sender (no reconnection).
async function switchTrack(kind, constraints) {
  const error = document.getElementById("device-error");
  error.textContent = "";
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: constraints });
    const track = stream.getAudioTracks()[0];
    const sender = pc?.getSenders().find((s) => s.track && s.track.kind === kind);
    if (sender) await sender.replaceTrack(track);
    const old = microphone.getAudioTracks();
    old.forEach((t) => { microphone.removeTrack(t); t.stop(); });
    microphone.addTrack(track);
    if (kind === "audio" && checkSource) meterMicrophone();  // the meter follows the new microphone
    window.passerelleTrackSwitched = (window.passerelleTrackSwitched || 0) + 1;  // tests see the switch
    window.passerelleSenders = () => pc.getSenders().filter((s) => s.track?.kind === "audio")
      .map((s) => s.track.label);
  } catch (err) {
    error.textContent = texts.device_failed;
  }
}

// -- the pre-call check, again during the call: the microphone's level, a test sound through the chosen speaker --

let checkContext = null;
let checkSource = null;

function meterMicrophone() {
  const track = microphone?.getAudioTracks()[0];
  const level = document.getElementById("mic-level");
  if (!track || !level) return;
  checkContext = checkContext || new AudioContext();
  checkSource?.disconnect();
  const analyser = checkContext.createAnalyser();
  analyser.fftSize = 1024;
  const source = checkContext.createMediaStreamSource(new MediaStream([track]));
  source.connect(analyser);
  checkSource = source;
  const samples = new Float32Array(analyser.fftSize);
  const tick = () => {
    if (source !== checkSource) return;  // another microphone since
    if (document.getElementById("panel-settings").hidden) {  // measured only while someone looks
      source.disconnect();
      checkSource = null;
      return;
    }
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const x of samples) sum += x * x;
    // dBFS mapped to 0..1 over -60..0 dB, as on the join page
    const value = Math.max(0, Math.min(1, (20 * Math.log10(Math.sqrt(sum / samples.length) + 1e-9) + 60) / 60));
    level.value = value;
    document.body.dataset.micLevel = value.toFixed(2);
    requestAnimationFrame(tick);
  };
  tick();
}

async function testSound() {
  checkContext = checkContext || new AudioContext();
  const out = checkContext.createMediaStreamDestination();
  const osc = checkContext.createOscillator();
  const gain = checkContext.createGain();
  osc.frequency.value = 660;
  gain.gain.setValueAtTime(0.2, checkContext.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, checkContext.currentTime + 1.2);
  osc.connect(gain).connect(out);
  const player = new Audio();
  player.srcObject = out.stream;
  try {
    if (remote.sinkId && player.setSinkId) await player.setSinkId(remote.sinkId);  // the speaker chosen
    await player.play();
  } catch (err) {
    document.getElementById("device-error").textContent = texts.device_failed;
    return;
  }
  osc.start();
  osc.stop(checkContext.currentTime + 1.2);
  osc.onended = () => { player.srcObject = null; };
  document.body.dataset.speaker = "played";
}

document.getElementById("mic-test")?.addEventListener("click", meterMicrophone);
document.getElementById("speaker-test").addEventListener("click", testSound);

function audioConstraints() {
  const noise = document.getElementById("noise")?.checked ?? true;
  const device = document.getElementById("mic-select")?.value;
  return { deviceId: device ? { exact: device } : undefined, noiseSuppression: noise, echoCancellation: true };
}

document.getElementById("mic-select")?.addEventListener("change", () => switchTrack("audio", audioConstraints()));
document.getElementById("noise")?.addEventListener("change", () => switchTrack("audio", audioConstraints()));
document.getElementById("camera-select")?.addEventListener("change", (event) => {
  document.getElementById("device-error").textContent = "";
  video.switchCamera(event.currentTarget.value).catch(() => {
    document.getElementById("device-error").textContent = texts.device_failed;
  });
});
document.getElementById("speaker-select")?.addEventListener("change", async (event) => {
  try {
    await remote.setSinkId(event.currentTarget.value);
  } catch (err) {
    document.getElementById("device-error").textContent = texts.device_failed;
  }
});

let lastBytes = null;

async function measure() {
  if (!pc || pc.connectionState !== "connected") return;
  const report = await pc.getStats();
  let rtt = null, lost = 0, received = 0, jitter = null, bytes = 0;
  report.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
      rtt = s.currentRoundTripTime * 1000;
    }
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      lost += s.packetsLost || 0;
      received += s.packetsReceived || 0;
      jitter = (s.jitter || 0) * 1000;
      bytes += s.bytesReceived || 0;
    }
    if (s.type === "remote-inbound-rtp" && rtt === null && s.roundTripTime !== undefined) rtt = s.roundTripTime * 1000;
  });
  const now = performance.now();
  const kbps = lastBytes ? ((bytes - lastBytes.bytes) * 8) / (now - lastBytes.at) : null;
  lastBytes = { bytes, at: now };
  const loss = received + lost ? (100 * lost) / (received + lost) : 0;
  const set = (id, text) => { document.getElementById(id).textContent = text; };
  set("stat-rtt", rtt === null ? "–" : `${Math.round(rtt)} ms`);
  set("stat-loss", `${loss.toFixed(1)} %`);
  set("stat-jitter", jitter === null ? "–" : `${Math.round(jitter)} ms`);
  set("stat-bitrate", kbps === null ? "–" : `${Math.round(kbps)} kbit/s`);
  const quality = (rtt ?? 0) > 400 || loss > 5 || (jitter ?? 0) > 60 ? "poor"
    : (rtt ?? 0) > 200 || loss > 1 || (jitter ?? 0) > 30 ? "weak" : "good";
  const net = document.getElementById("net");
  net.dataset.quality = quality;
  document.getElementById("net-word").textContent = texts[`net_${quality}`];
}
setInterval(() => { measure().catch(() => {}); }, 2000);

// -- media and signalling ---------------------------------------------------------------------------------------

async function openDevices() {
  if (config.media === "listen") return new MediaStream();  // listen only: no microphone is asked for
  return navigator.mediaDevices.getUserMedia({ audio: true });  // the camera has a connection of its own
}

const handlers = {
  welcome: (m) => { myId = m.you; video.welcome(m); present.welcome(m); board.welcome(m); },
  answer: (m) => pc.setRemoteDescription({ type: "answer", sdp: m.sdp }),
  participants: (m) => showParticipants(m.list, m.by_phone || 0),
  lobby: (m) => showLobby(m.list),
  calls: (m) => showCalls(m.list),
  "video-feeds": (m) => video.feeds(m),
  "video-answer": (m) => video.answer(m),
  "video-offer": (m) => video.offer(m),
  "video-restart": () => video.restart(),
  "share-stopped": () => video.shareStopped(),
  "video-slow": () => video.slow(),
  pointer: (m) => video.pointer(m),
  files: (m) => files.files(m),
  presentation: (m) => present.presentation(m),
  board: (m) => board.board(m),
  "board-ops": (m) => board.ops(m),
  waiting: () => { say(texts.waiting, "weak"); document.body.dataset.lobby = "waiting"; },
  admitted: () => { say(texts.connected, "good"); document.body.dataset.lobby = "admitted"; },
  denied: () => { refused = true; say(texts.denied, "bad"); document.body.dataset.lobby = "denied"; },
  pass: (m) => { sessionStorage.setItem(passKey, m.pass); video.entered(); },
  settings: (m) => {
    privateChat = m.private_chat;
    const box = document.getElementById("private-chat");
    if (box) box.checked = privateChat;
    const invites = document.getElementById("guests-invite");
    if (invites) invites.checked = m.guests_invite;
    if (!config.host) document.getElementById("invite").hidden = !m.guests_invite;
    const lock = document.getElementById("lock");
    if (lock) lock.checked = m.locked;
    const line = document.getElementById("locked-line");
    if (line.hidden === m.locked) announce(m.locked ? texts.locked : texts.unlocked);
    line.hidden = !m.locked;
    document.body.dataset.locked = m.locked ? "yes" : "";
    updateRecipients();
    video.settings(m);
    files.settings(m);
    board.settings(m);
    present.settings();  // "Annotate" follows who may draw
    video.refresh();
  },
  invited: (m) => {
    const li = document.createElement("li");
    li.dataset.id = m.id;
    li.dataset.state = m.state;
    li.textContent = `${m.address} · ${texts[`invite_${m.state}`]}`;
    li.dataset.address = m.address;
    document.getElementById("invites").append(li);
  },
  "invite-state": (m) => {
    const li = document.querySelector(`#invites li[data-id="${m.id}"]`);
    if (!li) return;
    li.dataset.state = m.state;
    li.textContent = `${li.dataset.address} · ${texts[`invite_${m.state}`]}`;
  },
  "muted-by-host": () => { setMuted(true); say(texts.muted_by_host, "weak"); },
  renamed: (m) => {
    const line = document.getElementById("you-are");
    line.textContent = line.dataset.template.replace("{name}", m.name);
    document.getElementById("display-name").value = m.name;
  },
  chat: (m) => showMessage(m.message),
  "chat-history": (m) => { clearChat(); m.list.forEach((message) => showMessage(message, { live: false })); },
  "chat-deleted": (m) => { shown.get(m.id)?.remove(); shown.delete(m.id); },
  "chat-cleared": () => clearChat(),
  error: (m) => {
    if (m.about === "chat") document.getElementById("chat-error").textContent = m.message;
    else if (m.about === "invite") document.getElementById("invite-error").textContent = m.message;
    else if (m.about === "call") document.getElementById("call-error").textContent = m.message;
    else if (m.about.startsWith("video") || m.about === "pointer") { video.refused(m); say(m.message, "weak"); }
    else if (m.about.startsWith("present")) document.getElementById("present-error").textContent = m.message;
    else if (m.about === "board") document.getElementById("board-error").textContent = m.message;
    else say(m.message, "bad");
  },
  restarting: () => { say(texts.restarting, "weak"); document.body.dataset.restarting = "yes"; },
  ended: (m) => {
    refused = true;
    sessionStorage.removeItem(passKey);
    say(texts[`ended_${m.reason}`] || texts.ended_ended, "bad");
    document.body.dataset.ended = m.reason;
    document.body.dataset.lobby = "";
  },
};

async function connect() {
  if (!microphone) {
    microphone = await openDevices();
    listDevices().catch(() => {});
  }
  pc = new RTCPeerConnection({ iceServers: config.iceServers });
  const here = pc;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${config.socket}`);
  microphone.getAudioTracks().forEach((track) => pc.addTrack(track, microphone));
  pc.addTransceiver("audio", { direction: config.media === "listen" ? "recvonly" : "sendrecv" });
  pc.ontrack = (event) => {
    remote.srcObject = event.streams[0] || new MediaStream([event.track]);
    window.passerelleRemote = remote.srcObject;  // tests listen to it
  };
  pc.onicecandidate = (event) => {
    if (event.candidate && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "candidate", candidate: event.candidate.candidate,
                                   sdpMid: event.candidate.sdpMid, sdpMLineIndex: event.candidate.sdpMLineIndex }));
    }
  };
  pc.onconnectionstatechange = () => {
    if (here.connectionState === "connected") {
      attempt = 0;
      if (document.body.dataset.lobby !== "waiting") say(texts.connected, "good");
      document.body.dataset.audio = "connected";
    }
  };
  socket.onopen = async () => {
    await here.setLocalDescription(await here.createOffer());
    // The page's state goes with the offer, so a page that reconnects by itself comes back as it was: muted, in.
    socket.send(JSON.stringify({ type: "offer", sdp: here.localDescription.sdp, muted,
                                 pass: sessionStorage.getItem(passKey) }));
    window.passerelleOffers = (window.passerelleOffers || 0) + 1;  // tests see that a device switch is not one
  };
  socket.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    await handlers[message.type]?.(message);
  };
  current = socket;
  socket.onclose = () => {
    here.close();
    video.lost();
    document.body.dataset.audio = "lost";
    if (refused || document.body.dataset.leaving) return;
    attempt += 1;
    if (attempt > 10) {
      say(texts.connection_failed, "bad");
      return;
    }
    say(texts.reconnecting, "weak");
    setTimeout(connect, Math.min(500 * 2 ** attempt, 8000));  // a blip: back within seconds
  };
}

document.getElementById("leave").addEventListener("click", () => {
  document.body.dataset.leaving = "yes";
  sessionStorage.removeItem(passKey);
});
document.getElementById("end")?.addEventListener("click", () => {
  if (window.confirm(texts.end_confirm)) send({ type: "end" });
});
connect().catch(() => say(texts.connection_failed, "bad"));
