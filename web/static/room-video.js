// The room's video, through Janus (an SFU: every picture forwarded as it was sent, never re-encoded): this page's
// camera (three simulcast layers) and screen share, each on a connection of its own to Janus, and one connection
// that receives the cameras and screens it shows. Passerelle relays the signalling over the room's channel
// (web/protocol.py: video-*); the sound stays on the page's audio connection to the bridge's mix.
//
// The stage: a tile per participant (phones too), in a grid of 9 (16 on a wide screen) paged beyond, or in speaker
// view (the one the mixer hears speak, or the one pinned, large); screen shares large with the cameras beside, and
// pointers on them. Each tile asks for the layer its size needs; a tile off screen, or every tile of a hidden tab,
// receives nothing; a weak network caps the layers before the sound suffers.

const CAMERA = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 15 } };
// High to low, as Janus expects them by default ("hml"): its substream 0 is "l", 2 is "h".
const LAYERS = [
  { rid: "h", maxBitrate: 1_500_000 },
  { rid: "m", maxBitrate: 500_000, scaleResolutionDownBy: 2 },
  { rid: "l", maxBitrate: 150_000, scaleResolutionDownBy: 4 },
];
const POINTER_MS = 100;  // at most 10 pointer positions a second
const POINTER_FADE_MS = 2500;

export function initVideo({ send, texts, config, tiles, nameOf, announce, notes }) {
  const stage = document.getElementById("stage-videos");
  const screensBox = document.getElementById("screens");
  const tilesBox = document.getElementById("tiles");
  const cameraButton = document.getElementById("camera");
  const shareButton = document.getElementById("share");
  const layoutButton = document.getElementById("layout");
  const pager = document.getElementById("pager");
  const state = {
    available: false,
    inRoom: false,
    myId: null,
    cameraWanted: config.media === "video",
    camera: null,  // {pc, stream} while this page publishes its camera
    screen: null,  // {pc, stream, still} while it shares its screen (still: the picture held for annotations)
    viewer: null,  // the connection receiving what this page shows
    viewerChain: Promise.resolve(),
    byMid: {},  // mid → {leg, source}
    streams: {},  // mid → MediaStream
    feeds: new Set(),  // legs publishing a camera
    screens: new Set(),  // legs sharing a screen
    paused: new Set(),  // legs whose share is held still (the board's layer "screen:<leg>" over it)
    people: [],
    layout: "grid",
    page: 0,
    pinned: null,
    speaker: null,
    cap: 2,  // the highest layer the network allows now: the lower of what the page measures and what Janus says
    statsCap: 2,
    slowCap: 2,
    slowAt: 0,
    layers: {},  // mid → what was last asked for
    visible: new Set(),  // tiles (leg ids) in view
    manyScreens: false,
  };
  window.passerelleVideo = state;  // tests read the connections' figures

  // -- publishing: the camera and the screen ---------------------------------------------------------------------

  async function publish(source, stream) {
    const pc = new RTCPeerConnection({ iceServers: config.iceServers });
    const track = stream.getVideoTracks()[0];
    if (source === "screen") {
      track.contentHint = "detail";  // sharp text over smooth motion
      pc.addTransceiver(track, { direction: "sendonly",
                                 sendEncodings: [{ maxBitrate: 1_500_000, maxFramerate: config.screenFps }] });
    } else {
      pc.addTransceiver(track, { direction: "sendonly", sendEncodings: LAYERS });
    }
    pc.onicecandidate = (event) => {
      send({ type: "video-candidate", to: source === "screen" ? "screen" : "publisher",
             candidate: event.candidate ? event.candidate.candidate : "",
             sdpMid: event.candidate?.sdpMid ?? null, sdpMLineIndex: event.candidate?.sdpMLineIndex ?? null });
    };
    await pc.setLocalDescription(await pc.createOffer());
    state[source] = { pc, stream };
    send({ type: "video-publish", source, sdp: pc.localDescription.sdp });
    return pc;
  }

  function unpublish(source, { tell = true } = {}) {
    const own = state[source];
    if (!own) return;
    state[source] = null;
    letGo(own);
    if (tell) send({ type: "video-unpublish", source });  // before the connection closes (Janus hangs it up)
    own.pc.close();
    own.stream.getTracks().forEach((t) => t.stop());
  }

  async function cameraOn() {
    const error = document.getElementById("device-error");
    const device = document.getElementById("camera-select")?.value;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { ...CAMERA,
                                                                    deviceId: device ? { exact: device } : undefined } });
    } catch (err) {
      state.cameraWanted = false;
      showButtons();
      if (error) error.textContent = texts.camera_failed;
      say(texts.camera_failed);
      return;
    }
    if (!state.cameraWanted || !state.inRoom) {  // turned off (or out of the room) while the camera was opening
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    await publish("camera", stream);
    render();
  }

  // A camera chosen in the settings: the new track goes into the same sender (no new negotiation, audio untouched).
  async function switchCamera(deviceId) {
    if (!state.camera) return;
    const stream = await navigator.mediaDevices.getUserMedia({ video: { ...CAMERA, deviceId: { exact: deviceId } } });
    const track = stream.getVideoTracks()[0];
    await state.camera.pc.getSenders()[0].replaceTrack(track);
    state.camera.stream.getTracks().forEach((t) => t.stop());
    state.camera.stream = stream;
    render();
    window.passerelleTrackSwitched = (window.passerelleTrackSwitched || 0) + 1;
  }

  async function shareOn() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: config.screenFps,
                                                                                      max: config.screenFps } },
                                                              audio: false });
    } catch (err) {
      return;  // the person chose not to share
    }
    stream.getVideoTracks()[0].addEventListener("ended", () => {  // "Stop sharing" in the browser's own bar
      unpublish("screen");
      showButtons();
      render();
    });
    await publish("screen", stream);
    showButtons();
    render();
  }

  function say(text) {
    const status = document.getElementById("connection");
    status.textContent = text;
    status.className = "status weak";
  }

  // -- receiving: one connection for everything this page shows ---------------------------------------------------

  function viewer() {
    if (state.viewer) return state.viewer;
    const pc = new RTCPeerConnection({ iceServers: config.iceServers });
    pc.ontrack = (event) => {
      const mid = event.transceiver.mid;
      state.streams[mid] = new MediaStream([event.track]);
      render();
    };
    pc.onconnectionstatechange = () => {
      // Janus sets a subscription's layers up afresh once its connection is up: they are asked for again then.
      if (pc.connectionState === "connected") {
        state.layers = {};
        layers();
      }
    };
    pc.onicecandidate = (event) => {
      send({ type: "video-candidate", to: "subscriber", candidate: event.candidate ? event.candidate.candidate : "",
             sdpMid: event.candidate?.sdpMid ?? null, sdpMLineIndex: event.candidate?.sdpMLineIndex ?? null });
    };
    state.viewer = pc;
    return pc;
  }

  function onOffer(message) {
    // One negotiation at a time: offers come in the order Janus made them.
    state.viewerChain = state.viewerChain.then(async () => {
      const pc = viewer();
      await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      state.byMid = {};
      for (const [mid, owner] of Object.entries(message.mids)) if (owner) state.byMid[mid] = owner;
      for (const mid of Object.keys(state.streams)) if (!state.byMid[mid]) delete state.streams[mid];
      state.layers = {};  // a new negotiation: every m-line is asked for again
      send({ type: "video-start", sdp: pc.localDescription.sdp });
      render();
    }).catch(() => {});
  }

  let watchTimer = null;
  let watched = "";

  // What this page shows, said to the bridge (which asks Janus): the cameras of the visible tiles, every screen.
  function watch() {
    if (!state.inRoom || !state.available) return;
    const legs = [...state.visible].filter((leg) => state.feeds.has(leg) && leg !== state.myId).sort();
    const screens = [...state.screens].filter((leg) => leg !== state.myId).sort();
    const key = JSON.stringify([legs, screens]);
    if (key === watched) return;
    clearTimeout(watchTimer);
    watchTimer = setTimeout(() => {  // a burst of changes (a page turned, three arrivals) is one request
      watched = key;
      send({ type: "video-watch", legs, screens });
    }, 150);
  }

  // -- the layers: by tile size, paused off screen or in a hidden tab, capped by the network ----------------------

  function wantedLayer(mid) {
    const owner = state.byMid[mid];
    if (!owner || document.hidden) return null;
    if (owner.source === "screen") return 0;
    if (!state.visible.has(owner.leg)) return null;
    const video = tilesBox.querySelector(`.tile[data-id="${owner.leg}"] video`);
    if (!video || !isOnScreen(video)) return null;
    // The smallest layer at least as tall as the tile (in device pixels): 180, 360 or 720 lines.
    const pixels = video.clientHeight * (window.devicePixelRatio || 1);
    const layer = pixels > 360 ? 2 : pixels > 180 ? 1 : 0;
    return Math.min(layer, state.cap);
  }

  const onScreen = new Map();  // element → whether it intersects the viewport
  const observer = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const entry of entries) onScreen.set(entry.target, entry.isIntersecting);
    layers();
  }) : null;

  function isOnScreen(element) {
    return onScreen.get(element) ?? true;
  }

  let layersTimer = null;

  function layers() {
    clearTimeout(layersTimer);
    layersTimer = setTimeout(() => {
      const changed = {};
      for (const mid of Object.keys(state.byMid)) {
        const layer = wantedLayer(mid);
        if (state.layers[mid] !== layer) changed[mid] = state.layers[mid] = layer;
      }
      if (Object.keys(changed).length) send({ type: "video-layers", mids: changed });
    }, 200);
  }

  document.addEventListener("visibilitychange", layers);
  window.addEventListener("resize", () => { render(); layers(); });

  // The network's figures of the receiving connection: losses or a long round trip cap the layers.
  let lastLoss = null;
  setInterval(async () => {
    if (!state.viewer || state.viewer.connectionState !== "connected") return;
    let lost = 0, received = 0, rtt = null;
    (await state.viewer.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        lost += s.packetsLost || 0;
        received += s.packetsReceived || 0;
      }
      if (s.type === "candidate-pair" && s.nominated && s.currentRoundTripTime !== undefined) {
        rtt = s.currentRoundTripTime * 1000;
      }
    });
    const before = lastLoss || { lost: 0, received: 0 };
    lastLoss = { lost, received };
    const total = (lost - before.lost) + (received - before.received);
    const loss = total > 0 ? (100 * (lost - before.lost)) / total : 0;
    state.statsCap = loss > 8 || (rtt ?? 0) > 500 ? 0 : loss > 3 || (rtt ?? 0) > 300 ? 1 : 2;
    if (state.slowCap < 2 && performance.now() - state.slowAt > 10_000) {  // a calm 10 s: one layer back up
      state.slowCap += 1;
      state.slowAt = performance.now();
    }
    capLayers();
  }, 3000);

  function capLayers() {
    const cap = Math.min(state.statsCap, state.slowCap);
    if (cap !== state.cap) {
      state.cap = cap;
      layers();
    }
  }

  // -- the stage ------------------------------------------------------------------------------------------------

  function pageSize() {
    return window.innerWidth >= 1200 ? 16 : 9;
  }

  function order() {
    const people = state.people.slice();
    const first = state.pinned || (state.layout === "speaker" ? state.speaker : null);
    if (first) {
      const index = people.findIndex((p) => p.id === first);
      if (index > 0) people.unshift(...people.splice(index, 1));
    }
    return people;
  }

  function videoIn(tile) {
    let video = tile.querySelector("video");
    if (!video) {
      video = document.createElement("video");
      video.autoplay = true;
      video.muted = true;  // the sound comes mixed by the bridge, on the audio connection
      video.playsInline = true;
      tile.prepend(video);
      observer?.observe(video);
    }
    return video;
  }

  function dropVideo(tile) {
    const video = tile.querySelector("video");
    if (!video) return;
    observer?.unobserve(video);
    onScreen.delete(video);
    video.srcObject = null;
    video.remove();
  }

  function streamOf(leg, source) {
    const mid = Object.keys(state.byMid).find((m) => state.byMid[m].leg === leg && state.byMid[m].source === source);
    return mid === undefined ? null : state.streams[mid] || null;
  }

  function render() {
    const people = order();
    const size = state.layout === "speaker" ? pageSize() - 1 : pageSize();
    const main = state.layout === "speaker" || state.pinned ? people[0]?.id : null;
    const rest = main ? people.slice(1) : people;
    const pages = Math.max(1, Math.ceil(rest.length / size));
    state.page = Math.min(state.page, pages - 1);
    const shown = new Set(rest.slice(state.page * size, (state.page + 1) * size).map((p) => p.id));
    if (main) shown.add(main);
    state.visible = shown;
    for (const p of state.people) {
      const tile = tiles.get(p.id);
      if (!tile) continue;
      tile.hidden = !shown.has(p.id);
      tile.classList.toggle("main", p.id === main);
      tile.dataset.pinned = p.id === state.pinned ? "yes" : "no";
      const stream = p.id === state.myId ? state.camera?.stream : (state.feeds.has(p.id) ? streamOf(p.id, "camera")
                                                                                       : null);
      if (stream && !tile.hidden) {
        const video = videoIn(tile);
        if (video.srcObject !== stream) video.srcObject = stream;
        video.classList.toggle("mirror", p.id === state.myId);  // one's own picture as in a mirror
        tile.dataset.video = "yes";
      } else {
        dropVideo(tile);
        tile.dataset.video = "no";
      }
    }
    // Tiles follow the order (the pinned one, or the speaker, first).
    people.forEach((p, index) => {
      const tile = tiles.get(p.id);
      if (tile && tilesBox.children[index] !== tile) tilesBox.insertBefore(tile, tilesBox.children[index] || null);
    });
    tilesBox.dataset.layout = main ? "speaker" : "grid";
    // Few people, large tiles; many, smaller ones (a phone keeps two abreast).
    const count = shown.size - (main ? 1 : 0);
    const phone = window.matchMedia("(max-width: 48rem)").matches;
    tilesBox.style.setProperty("--tile-min", count <= 1 ? "26rem" : count === 2 ? "19rem" : phone ? "8.5rem"
                                                  : count <= 4 ? "14rem" : count <= 9 ? "11rem" : "9rem");
    pager.hidden = pages <= 1;
    document.getElementById("page-of").textContent = texts.page_of.replace("{page}", String(state.page + 1))
      .replace("{pages}", String(pages));
    document.getElementById("page-prev").disabled = state.page === 0;
    document.getElementById("page-next").disabled = state.page >= pages - 1;
    renderScreens();
    const cameras = [...tilesBox.querySelectorAll(".tile[data-video=yes]")].length;
    document.body.dataset.video = cameras || screensBox.children.length ? "yes" : "";
    const presenting = !document.getElementById("presentation").hidden || !document.getElementById("board").hidden;
    stage.dataset.sharing = screensBox.children.length || presenting ? "yes" : "";
    watch();
    layers();
  }

  // -- holding one's share still, to be annotated ----------------------------------------------------------------
  // The picture of the moment goes on a canvas whose stream replaces the screen in the same sender (no new
  // negotiation): everyone, a late joiner too, sees that still picture, and the board's layer over it stays true to
  // it while the sharer's own screen moves on. Repainted twice a second, so that a keyframe Janus asks for comes.

  async function hold(on) {
    const share = state.screen;
    if (!share) return;
    const sender = share.pc.getSenders()[0];
    if (on && !share.still) {
      const video = screenFigures.get(state.myId)?.querySelector("video");
      if (!video || !video.videoWidth) return;
      const frame = await createImageBitmap(video);
      const canvas = document.createElement("canvas");
      canvas.width = frame.width;
      canvas.height = frame.height;
      const context = canvas.getContext("2d");
      context.drawImage(frame, 0, 0);
      const stream = canvas.captureStream(config.screenFps);
      const track = stream.getVideoTracks()[0];
      track.contentHint = "detail";
      share.still = { stream, track, frame, timer: setInterval(() => context.drawImage(frame, 0, 0), 500) };
      await sender.replaceTrack(track);
      send({ type: "screen-pause", paused: true });
    } else if (!on && share.still) {
      const own = { still: share.still };
      share.still = null;
      await sender.replaceTrack(share.stream.getVideoTracks()[0]);
      letGo(own);
      send({ type: "screen-pause", paused: false });
    }
    render();
  }

  function letGo(own) {
    if (!own.still) return;
    clearInterval(own.still.timer);
    own.still.track.stop();
    own.still.frame.close();
    own.still = null;
  }

  // -- screens, and pointers on them ----------------------------------------------------------------------------

  const screenFigures = new Map();  // leg → its figure

  function renderScreens() {
    const sharers = [...state.screens].filter((leg) => leg !== state.myId);
    if (state.screen) sharers.unshift(state.myId);  // one's own share, to see where the others point
    for (const [leg, figure] of screenFigures) {
      if (!sharers.includes(leg)) {
        figure.notes?.remove();
        figure.remove();
        screenFigures.delete(leg);
      }
    }
    for (const leg of sharers) {
      let figure = screenFigures.get(leg);
      if (!figure) {
        figure = screenFigure(leg);
        screenFigures.set(leg, figure);
        screensBox.append(figure);
      }
      const mine = leg === state.myId;
      const stream = mine ? (state.screen.still?.stream || state.screen.stream) : streamOf(leg, "screen");
      const video = figure.querySelector("video");
      if (video.srcObject !== stream) video.srcObject = stream;
      const person = state.people.find((p) => p.id === leg);
      const held = state.paused.has(leg);
      figure.dataset.held = held ? "yes" : "";
      figure.querySelector("figcaption .who").textContent = (mine ? texts.your_screen
        : texts.screen_of.replace("{name}", person ? nameOf(person) : texts.someone))
        + (held ? ` (${texts.screen_paused})` : "");
      const stop = figure.querySelector("[data-action=stop-share]");
      if (stop) stop.hidden = mine;
      const holdButton = figure.querySelector("[data-action=hold]");
      holdButton.hidden = !mine;
      holdButton.setAttribute("aria-pressed", String(mine && !!state.screen.still));
      holdButton.textContent = mine && state.screen.still ? texts.resume_share : texts.pause_share;
      if (!held) figure.notes?.annotate(false);
      const annotate = figure.querySelector("[data-action=annotate]");
      annotate.hidden = !held || !notes().mayDraw();
      annotate.setAttribute("aria-pressed", String(!!figure.notes?.annotating));
      annotate.textContent = figure.notes?.annotating ? texts.stop_annotating : texts.annotate;
      placeLayer(figure);
      notesOf(figure).redraw();
    }
    screensBox.hidden = sharers.length === 0;
  }

  function screenFigure(leg) {
    const figure = document.createElement("figure");
    figure.className = "screen";
    figure.dataset.leg = leg;
    const frame = document.createElement("div");
    frame.className = "screen-frame";
    const video = document.createElement("video");
    video.autoplay = true;
    video.muted = true;
    video.playsInline = true;
    const drawn = document.createElement("canvas");  // the board's layer over the picture, while it is held
    drawn.className = "notes";
    drawn.setAttribute("role", "img");
    drawn.setAttribute("aria-label", texts.annotate);
    const layer = document.createElement("div");
    layer.className = "pointers";
    frame.append(video, drawn, layer);
    const caption = document.createElement("figcaption");
    const who = document.createElement("span");
    who.className = "who";
    const pointing = document.createElement("button");
    pointing.type = "button";
    pointing.className = "small secondary";
    pointing.dataset.action = "point";
    pointing.setAttribute("aria-pressed", "false");
    pointing.textContent = texts.point;
    pointing.addEventListener("click", () => {
      const on = pointing.getAttribute("aria-pressed") !== "true";
      pointing.setAttribute("aria-pressed", String(on));
      figure.dataset.pointing = on ? "yes" : "";
      if (!on) send({ type: "pointer", screen: leg, x: null, y: null });
    });
    const holding = document.createElement("button");
    holding.type = "button";
    holding.className = "small secondary annotate";
    holding.dataset.action = "hold";
    holding.hidden = true;
    holding.addEventListener("click", () => hold(!state.screen?.still));
    const annotate = document.createElement("button");
    annotate.type = "button";
    annotate.className = "small secondary annotate";
    annotate.dataset.action = "annotate";
    annotate.hidden = true;
    annotate.addEventListener("click", () => {
      notesOf(figure).annotate(!figure.notes.annotating);
      render();
    });
    caption.append(who, " ", pointing, " ", holding, " ", annotate);
    if (config.host) {
      const stop = document.createElement("button");
      stop.type = "button";
      stop.className = "small danger";
      stop.dataset.action = "stop-share";
      stop.textContent = texts.stop_share;
      stop.addEventListener("click", () => send({ type: "stop-share", leg }));
      caption.append(" ", stop);
    }
    figure.append(frame, caption);
    // At most one position each POINTER_MS, and the last one always: where the pointer came to rest.
    let last = 0, latest = null, later = null;
    const point = () => {
      later = null;
      last = performance.now();
      send({ type: "pointer", screen: leg, x: latest.x, y: latest.y });
      drawPointer(leg, state.myId, texts.you, latest.x, latest.y);
    };
    frame.addEventListener("pointermove", (event) => {
      if (figure.dataset.pointing !== "yes") return;
      const at = onPicture(video, event.clientX, event.clientY);
      if (!at) return;
      latest = at;
      const wait = POINTER_MS - (performance.now() - last);
      if (wait <= 0) point();
      else if (!later) later = setTimeout(point, wait);
    });
    frame.addEventListener("pointerleave", () => {
      if (figure.dataset.pointing === "yes") send({ type: "pointer", screen: leg, x: null, y: null });
    });
    video.addEventListener("loadedmetadata", () => placeLayer(figure));
    video.addEventListener("resize", () => placeLayer(figure));
    return figure;
  }

  function notesOf(figure) {
    figure.notes ||= notes().layer(figure.querySelector(".notes"), {
      target: () => (state.paused.has(figure.dataset.leg) ? `screen:${figure.dataset.leg}` : null),
      owner: () => figure.dataset.leg === state.myId,
      home: figure.querySelector(".screen-frame"),
    });
    return figure.notes;
  }

  // Where on the shared picture (0..1 of its own width and height) a point of the page falls: the video is shown
  // whole (object-fit: contain), so the bars around it are taken off. Null off the picture.
  function pictureBox(video) {
    const rect = video.getBoundingClientRect();
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h || !rect.width || !rect.height) return null;
    const scale = Math.min(rect.width / w, rect.height / h);
    const width = w * scale, height = h * scale;
    return { left: rect.left + (rect.width - width) / 2, top: rect.top + (rect.height - height) / 2, width, height,
             offsetX: (rect.width - width) / 2, offsetY: (rect.height - height) / 2 };
  }

  function onPicture(video, clientX, clientY) {
    const box = pictureBox(video);
    if (!box) return null;
    const x = (clientX - box.left) / box.width, y = (clientY - box.top) / box.height;
    if (x < 0 || x > 1 || y < 0 || y > 1) return null;
    return { x: Math.round(x * 10000) / 10000, y: Math.round(y * 10000) / 10000 };
  }

  // The pointers' layer covers exactly the picture, so a pointer at (x, y) is at x %, y % of it.
  function placeLayer(figure) {
    const video = figure.querySelector("video");
    const box = pictureBox(video);
    const layer = figure.querySelector(".pointers");
    if (!box) return;
    Object.assign(layer.style, { left: `${box.offsetX}px`, top: `${box.offsetY}px`, width: `${box.width}px`,
                                 height: `${box.height}px` });
    const size = `${box.width}x${box.height}x${box.offsetX}x${box.offsetY}`;
    if (figure.dataset.fitted !== size) {  // the annotations' canvas over the very same picture
      figure.dataset.fitted = size;
      notesOf(figure).fit(box.width, box.height, box.offsetX, box.offsetY);
    }
  }

  function colour(leg) {
    let hash = 0;
    for (const ch of leg) hash = (hash * 31 + ch.charCodeAt(0)) % 360;
    return `hsl(${hash}, 85%, 45%)`;
  }

  function drawPointer(screen, leg, name, x, y) {
    const figure = screenFigures.get(screen);
    if (!figure) return;
    placeLayer(figure);
    const layer = figure.querySelector(".pointers");
    let dot = layer.querySelector(`[data-leg="${CSS.escape(leg)}"]`);
    if (x === null) {
      dot?.remove();
      return;
    }
    if (!dot) {
      dot = document.createElement("span");
      dot.className = "pointer";
      dot.dataset.leg = leg;
      const label = document.createElement("span");
      label.className = "pointer-name";
      dot.append(label);
      dot.style.setProperty("--colour", colour(leg));
      layer.append(dot);
    }
    dot.querySelector(".pointer-name").textContent = name;
    dot.style.left = `${x * 100}%`;
    dot.style.top = `${y * 100}%`;
    dot.dataset.x = String(x);
    dot.dataset.y = String(y);
    dot.classList.remove("fading");
    void dot.offsetWidth;  // restart the fade
    dot.classList.add("fading");
    clearTimeout(dot.fade);
    dot.fade = setTimeout(() => dot.remove(), POINTER_FADE_MS);
  }

  // -- the controls ---------------------------------------------------------------------------------------------

  function showButtons() {
    cameraButton.hidden = !state.available;
    cameraButton.setAttribute("aria-pressed", String(state.cameraWanted));
    cameraButton.textContent = state.cameraWanted ? cameraButton.dataset.on : cameraButton.dataset.off;
    const canShare = state.available && !!navigator.mediaDevices?.getDisplayMedia;
    shareButton.hidden = !canShare;
    shareButton.setAttribute("aria-pressed", String(!!state.screen));
    shareButton.textContent = state.screen ? shareButton.dataset.on : shareButton.dataset.off;
    const othersShare = [...state.screens].some((leg) => leg !== state.myId);
    shareButton.disabled = !state.screen && othersShare && !state.manyScreens;
  }

  cameraButton.addEventListener("click", () => {
    state.cameraWanted = !state.cameraWanted;
    showButtons();
    if (state.cameraWanted) cameraOn();
    else {
      unpublish("camera");
      render();
    }
  });
  shareButton.addEventListener("click", () => {
    if (state.screen) {
      unpublish("screen");
      showButtons();
      render();
    } else {
      shareOn();
    }
  });
  layoutButton.addEventListener("click", () => {
    state.layout = state.layout === "grid" ? "speaker" : "grid";
    layoutButton.setAttribute("aria-pressed", String(state.layout === "speaker"));
    layoutButton.textContent = state.layout === "speaker" ? layoutButton.dataset.on : layoutButton.dataset.off;
    state.page = 0;
    render();
  });
  document.getElementById("page-prev").addEventListener("click", () => { state.page -= 1; render(); });
  document.getElementById("page-next").addEventListener("click", () => { state.page += 1; render(); });
  document.getElementById("many-screens")?.addEventListener("change", (event) => {
    send({ type: "settings", many_screens: event.currentTarget.checked });
  });

  function pin(leg) {
    state.pinned = state.pinned === leg ? null : leg;
    state.page = 0;
    for (const button of document.querySelectorAll('#participants [data-action="pin"]')) {
      button.setAttribute("aria-pressed", String(button.closest("li").dataset.id === state.pinned));
    }
    render();
  }

  // -- what the room says ---------------------------------------------------------------------------------------

  return {
    pin,
    refresh: render,
    switchCamera,
    welcome(message) {
      state.myId = message.you;
      state.available = !!message.video;
      showButtons();
    },
    entered() {  // in the room (not the lobby): the camera goes up if it is on
      state.inRoom = true;
      watched = "";
      if (state.cameraWanted && state.available && !state.camera) cameraOn();
      render();
    },
    participants(list) {
      state.people = list;
      // The speaker: the one the mixer hears now, kept until someone else speaks (phones too).
      const speaking = list.filter((p) => p.speaking && p.id !== state.myId);
      if (speaking.length && !speaking.some((p) => p.id === state.speaker)) state.speaker = speaking[0].id;
      if (state.speaker && !list.some((p) => p.id === state.speaker)) state.speaker = null;
      if (state.pinned && !list.some((p) => p.id === state.pinned)) state.pinned = null;
      render();
    },
    settings(message) {
      state.manyScreens = !!message.many_screens;
      const box = document.getElementById("many-screens");
      if (box) box.checked = state.manyScreens;
      showButtons();
    },
    feeds(message) {
      const before = new Set(state.screens);
      state.feeds = new Set(message.list);
      state.screens = new Set(message.screens || []);
      state.paused = new Set(message.paused || []);
      for (const leg of state.screens) {
        if (!before.has(leg) && leg !== state.myId) {
          const person = state.people.find((p) => p.id === leg);
          announce(texts.screen_of.replace("{name}", person ? nameOf(person) : texts.someone));
        }
      }
      showButtons();
      render();
    },
    answer(message) {
      const own = state[message.source === "screen" ? "screen" : "camera"];
      own?.pc.setRemoteDescription({ type: "answer", sdp: message.sdp }).catch(() => {});
    },
    offer: onOffer,
    slow() {  // Janus loses what it sends this page: one layer down, for at least 10 s
      state.slowCap = Math.max(0, Math.min(state.slowCap, state.cap) - 1);
      state.slowAt = performance.now();
      capLayers();
    },
    pointer(message) {
      const person = state.people.find((p) => p.id === message.leg);
      drawPointer(message.screen, message.leg, person ? nameOf(person) : message.name, message.x, message.y);
    },
    shareStopped() {
      unpublish("screen", { tell: false });
      say(texts.share_stopped_by_host);
      showButtons();
      render();
    },
    refused(message) {  // a video-publish refused (a screen already shared): nothing is sent
      if (message.about === "video-publish" && state.screen) {
        unpublish("screen", { tell: false });
        showButtons();
        render();
      }
    },
    restart() {  // Janus restarted: publish and watch again, as new
      const camera = !!state.camera;
      const screen = state.screen;
      lost({ keepScreen: true });
      if (camera || state.cameraWanted) cameraOn();
      if (screen) {
        const stream = screen.stream;
        publish("screen", stream).then(() => { showButtons(); render(); });
      }
      state.inRoom = true;
      render();
    },
    lost,
  };

  // The room's socket closed (the page reconnects by itself) or Janus restarted: every connection to Janus goes.
  function lost({ keepScreen = false } = {}) {
    state.inRoom = false;
    if (state.camera) unpublish("camera", { tell: false });
    if (state.screen) {
      if (keepScreen) {
        letGo(state.screen);
        state.screen.pc.close();
        state.screen = null;
      } else {
        unpublish("screen", { tell: false });
      }
    }
    state.viewer?.close();
    state.viewer = null;
    state.viewerChain = Promise.resolve();
    state.byMid = {};
    state.streams = {};
    state.layers = {};
    state.feeds = new Set();
    state.screens = new Set();
    state.paused = new Set();
    watched = "";
    showButtons();
    render();
  }
}
