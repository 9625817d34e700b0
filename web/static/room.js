// The room: the browser's audio leg (WebRTC, signalled over the room WebSocket), reconnecting by itself after
// a network blip. Plain ES module.

const config = JSON.parse(document.getElementById("room-config").textContent);
const texts = JSON.parse(document.getElementById("texts").textContent);
const status = document.getElementById("connection");
const remote = document.getElementById("remote");
let microphone = null;
let attempt = 0;
let current = null;
let muted = false;
let refused = false;
let myId = null;  // this page's leg in the participant list (the bridge's "welcome")
// Given by the bridge once in the room: shown again on reconnecting, it goes straight back in (not the lobby).
const passKey = `passerelle-pass:${config.socket}`;
const VIDEO_SLOTS = 4;  // cameras shown at once (the bridge's web/video.py SLOTS)
let videoByMid = {};

// The list is updated in place (one item per participant, kept), not rebuilt: it is not a live region, so a
// screen reader is not read the whole list at every change of who is speaking; arrivals and departures are said
// once, in #announce.
const items = new Map();
let listed = false;

function announce(text) {
  const region = document.getElementById("announce");
  if (region) region.textContent = text;
}

function showParticipants(list) {
  const ul = document.getElementById("participants");
  const present = new Set();
  list.forEach((p, index) => {
    p.you = p.id === myId;
    present.add(p.id);
    const who = p.label || (p.kind === "sip" ? texts.phone : texts.someone);
    let li = items.get(p.id);
    if (!li) {
      li = document.createElement("li");
      items.set(p.id, li);
      if (listed && !p.you) announce(texts.joined.replace("{name}", who));
    }
    li.dataset.id = p.id;
    li.dataset.kind = p.kind;
    li.dataset.speaking = p.speaking ? "yes" : "no";
    li.dataset.muted = p.muted ? "yes" : "no";
    const where = p.kind === "sip" ? texts.by_phone : texts.on_web;
    const text = `${who}${p.you ? " (" + texts.you + ")" : ""} · ${where}` +
      (p.muted ? " · " + texts.muted : "") + (p.speaking ? " · " + texts.speaking : "");
    if (li.textContent !== text) li.textContent = text;
    if (ul.children[index] !== li) ul.insertBefore(li, ul.children[index] || null);
  });
  for (const [id, li] of items) {
    if (present.has(id)) continue;
    announce(texts.left.replace("{name}", li.textContent.split(" · ")[0]));
    li.remove();
    items.delete(id);
  }
  listed = true;
}

function showLobby(list) {
  const ul = document.getElementById("lobby");
  if (!ul) return;
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
      button.textContent = label;
      button.dataset.action = action;
      button.addEventListener("click", () => {
        if (current && current.readyState === WebSocket.OPEN) current.send(JSON.stringify({ type: action, leg: w.id }));
        button.disabled = true;
      });
      li.append(button, " ");
    }
    return li;
  }));
}

document.getElementById("mute")?.addEventListener("click", (event) => {
  muted = !muted;
  const button = event.currentTarget;
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = muted ? button.dataset.on : button.dataset.off;
  if (current && current.readyState === WebSocket.OPEN) current.send(JSON.stringify({ type: "mute", muted }));
});

function say(text, kind) {
  status.textContent = text;
  status.className = "status " + (kind || "");
}

function showVideos(slots) {
  const panel = document.getElementById("video-panel");
  const grid = document.getElementById("videos");
  grid.replaceChildren(...slots.map((slot) => {
    const figure = document.createElement("figure");
    const video = document.createElement("video");
    video.autoplay = true;
    video.muted = true;  // the sound comes mixed by the bridge, in the audio element
    video.playsInline = true;
    video.dataset.mid = slot.mid;
    video.srcObject = videoByMid[slot.mid] || null;
    const caption = document.createElement("figcaption");
    caption.textContent = slot.label || texts.someone;
    figure.append(video, caption);
    return figure;
  }));
  panel.hidden = slots.length === 0;
}

async function openDevices() {
  if (config.media === "listen") return new MediaStream();  // listen only: no microphone is asked for
  if (config.media === "video") {
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15 } } });
    } catch (error) {
      // No camera, or refused: the microphone alone, as on the join page's "microphone only".
    }
  }
  return navigator.mediaDevices.getUserMedia({ audio: true });
}

async function connect() {
  if (!microphone) {
    microphone = await openDevices();
  }
  const pc = new RTCPeerConnection({ iceServers: config.iceServers });
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${config.socket}`);
  microphone.getAudioTracks().forEach((track) => pc.addTrack(track, microphone));
  pc.addTransceiver("audio", { direction: config.media === "listen" ? "recvonly" : "sendrecv" });
  microphone.getVideoTracks().forEach((track) => pc.addTransceiver(track, { direction: "sendonly" }));
  for (let i = 0; i < VIDEO_SLOTS; i += 1) pc.addTransceiver("video", { direction: "recvonly" });
  videoByMid = {};
  pc.ontrack = (event) => {
    if (event.track.kind === "video") {
      const stream = new MediaStream([event.track]);
      videoByMid[event.transceiver.mid] = stream;
      const shown = document.querySelector(`#videos video[data-mid="${event.transceiver.mid}"]`);
      if (shown) shown.srcObject = stream;  // the bridge's "video" message came first
      return;
    }
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
    if (pc.connectionState === "connected") {
      attempt = 0;
      if (document.body.dataset.lobby !== "waiting") say(texts.connected, "good");
      document.body.dataset.audio = "connected";
    }
  };
  socket.onopen = async () => {
    await pc.setLocalDescription(await pc.createOffer());
    // The page's state goes with the offer, so a page that reconnects by itself comes back as it was: muted, in.
    socket.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, muted,
                                 pass: sessionStorage.getItem(passKey) }));
  };
  socket.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "welcome") myId = message.you;
    else if (message.type === "answer") await pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
    else if (message.type === "participants") showParticipants(message.list);
    else if (message.type === "lobby") showLobby(message.list);
    else if (message.type === "video") showVideos(message.slots);
    else if (message.type === "waiting") { say(texts.waiting, "weak"); document.body.dataset.lobby = "waiting"; }
    else if (message.type === "admitted") { say(texts.connected, "good"); document.body.dataset.lobby = "admitted"; }
    else if (message.type === "denied") { refused = true; say(texts.denied, "bad"); document.body.dataset.lobby = "denied"; }
    else if (message.type === "error") say(message.message, "bad");
    else if (message.type === "pass") sessionStorage.setItem(passKey, message.pass);
    else if (message.type === "restarting") { say(texts.restarting, "weak"); document.body.dataset.restarting = "yes"; }
    else if (message.type === "ended") {
      refused = true;
      sessionStorage.removeItem(passKey);
      say(texts[`ended_${message.reason}`] || texts.ended_ended, "bad");
      document.body.dataset.ended = message.reason;
      document.body.dataset.lobby = "";
    }
  };
  current = socket;
  socket.onclose = () => {
    pc.close();
    showVideos([]);
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
const end = document.getElementById("end");
if (end) {
  end.addEventListener("click", () => {
    if (!window.confirm(texts.end_confirm)) return;
    if (current && current.readyState === WebSocket.OPEN) current.send(JSON.stringify({ type: "end" }));
  });
}
connect().catch(() => say(texts.connection_failed, "bad"));
