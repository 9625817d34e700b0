// The join page: the pre-call check (microphone level, test sound, camera preview, network) and the form.
// Plain ES module, no bundler. Texts come from the page (translated on the server).

const texts = JSON.parse(document.getElementById("texts").textContent);
const $ = (id) => document.getElementById(id);
let stream = null;
let audioContext = null;

function media() {
  return document.querySelector('input[name="media"]:checked').value;
}

function explain(error) {
  // What to do, in words, rather than a blank page: permission refused, no device, device busy.
  if (error && (error.name === "NotAllowedError" || error.name === "SecurityError")) return texts.mic_denied;
  if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError")) return texts.mic_missing;
  if (error && error.name === "NotReadableError") return texts.mic_busy;
  return texts.mic_unavailable;
}

async function openDevices() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  const wantVideo = media() === "video";
  $("check-camera").hidden = !wantVideo;
  $("camera-preview").srcObject = null;
  if (media() === "listen") {
    // No microphone is opened at all: the room is heard, nobody hears this page.
    $("mic-level").value = 0;
    $("mic-status").textContent = texts.listen_only;
    $("mic-status").classList.remove("bad");
    document.body.dataset.mic = "unused";
    return;
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("mic-status").textContent = texts.mic_unsupported;
    $("mic-status").classList.add("bad");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: wantVideo });
  } catch (error) {
    // Without a microphone one can still listen: say so, next to the reason.
    $("mic-status").textContent = `${explain(error)} ${texts.or_listen}`;
    $("mic-status").classList.add("bad");
    document.body.dataset.mic = "refused";
    return;
  }
  document.body.dataset.mic = "ok";
  $("mic-status").textContent = texts.mic_ok;
  $("mic-status").classList.remove("bad");
  if (wantVideo) $("camera-preview").srcObject = stream;
  meter(stream);
}

function meter(source) {
  audioContext = audioContext || new AudioContext();
  const analyser = audioContext.createAnalyser();
  analyser.fftSize = 1024;
  audioContext.createMediaStreamSource(source).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const tick = () => {
    if (!stream || source !== stream) return;
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const rms = Math.sqrt(sum / samples.length);
    // dBFS mapped to 0..1 over -60..0 dB: speech sits in the upper half.
    const level = Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
    $("mic-level").value = level;
    document.body.dataset.micLevel = level.toFixed(2);
    requestAnimationFrame(tick);
  };
  tick();
}

function testSound() {
  audioContext = audioContext || new AudioContext();
  const osc = audioContext.createOscillator();
  const gain = audioContext.createGain();
  osc.frequency.value = 660;
  gain.gain.setValueAtTime(0.2, audioContext.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audioContext.currentTime + 1.2);
  osc.connect(gain).connect(audioContext.destination);
  osc.start();
  osc.stop(audioContext.currentTime + 1.2);
  document.body.dataset.speaker = "played";
}

async function networkTest() {
  const status = $("network-status");
  try {
    const rtts = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await fetch("/api/net/ping", { cache: "no-store" });
      rtts.push(performance.now() - t0);
    }
    rtts.sort((a, b) => a - b);
    const rtt = rtts[Math.floor(rtts.length / 2)];
    const size = 256 * 1024;
    const t0 = performance.now();
    const body = await (await fetch(`/api/net/download?bytes=${size}`, { cache: "no-store" })).arrayBuffer();
    const kbps = (body.byteLength * 8) / Math.max(1, performance.now() - t0);
    const need = media() === "video" ? 600 : media() === "listen" ? 60 : 100;  // kbit/s the call needs, with margin
    let verdict = "good";
    if (rtt > 400 || kbps < need) verdict = "insufficient";
    else if (rtt > 150 || kbps < need * 3) verdict = "weak";
    document.body.dataset.network = verdict;
    status.textContent = texts["network_" + verdict]
      .replace("{rtt}", Math.round(rtt))
      .replace("{kbps}", new Intl.NumberFormat(document.documentElement.lang).format(Math.round(kbps)));
    status.className = "status " + verdict;
  } catch (error) {
    document.body.dataset.network = "insufficient";
    status.textContent = texts.network_failed;
    status.className = "status insufficient";
  }
}

$("speaker-test").addEventListener("click", testSound);
document.querySelectorAll('input[name="media"]').forEach((r) => r.addEventListener("change", () => {
  openDevices();
  networkTest();
}));
// A conference not open yet: the page counts down with the server's clock and, once the patient has asked to join,
// enters by itself when it opens.
const opens = $("opens");
const skew = opens ? Date.parse(opens.dataset.now) - Date.now() : 0;
const opensAt = opens ? Date.parse(opens.dataset.opensAt) : NaN;
let waitingToJoin = false;

function untilOpen() {
  return opensAt - (Date.now() + skew);
}

function countdown() {
  if (!opens) return;
  const left = untilOpen();
  if (left <= 0) {
    $("countdown").textContent = texts.open_now;
    document.body.dataset.open = "yes";
    if (waitingToJoin) {
      waitingToJoin = false;
      $("join").submit();  // no submit event: the checks below already passed
    }
    return;
  }
  const minutes = Math.ceil(left / 60000);
  $("countdown").textContent = minutes > 90 ? "" : texts.opens_in.replace("{minutes}", minutes);
  // Once a second in the last minute (the patient is waiting), every 15 s before.
  setTimeout(countdown, left < 61000 ? Math.min(1000, left + 250) : 15000);
}

$("join").addEventListener("submit", (event) => {
  const name = $("name").value.trim();
  const code = $("entry_code");
  let problem = "";
  if (!name) problem = texts.name_missing;
  else if (code && !/^\d{4,8}$/.test(code.value.trim())) problem = texts.entry_code_form;
  if (problem) {
    event.preventDefault();
    $("error").textContent = problem;
    $("error").hidden = false;
    return;
  }
  if (opens && untilOpen() > 0) {
    event.preventDefault();
    waitingToJoin = true;
    document.body.dataset.waiting = "yes";
    $("error").hidden = true;
    $("join-button").disabled = true;
    $("join-button").textContent = texts.will_enter;
  }
});
countdown();
openDevices();
networkTest();
document.body.dataset.ready = "yes";
