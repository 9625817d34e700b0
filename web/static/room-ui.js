// The room's side bar: tabs that open their panel (a sheet on a phone) and close it again, badges, and text that
// is shown as text — links made clickable, nothing a participant writes ever parsed as HTML.

const tabs = [...document.querySelectorAll('.rail [role="tab"]')];

export function openPanel(name, { focus = false } = {}) {
  for (const tab of tabs) {
    const selected = tab.getAttribute("aria-controls") === `panel-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    document.getElementById(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  document.body.dataset.panel = name;
  if (focus) document.getElementById(`panel-${name}`).focus();
  document.dispatchEvent(new CustomEvent("panel", { detail: name }));
}

export function closePanels() {
  for (const tab of tabs) {
    tab.setAttribute("aria-selected", "false");
    document.getElementById(tab.getAttribute("aria-controls")).hidden = true;
  }
  document.body.dataset.panel = "";
  document.dispatchEvent(new CustomEvent("panel", { detail: "" }));
}

export function panelOpen(name) {
  return document.body.dataset.panel === name;
}

tabs.forEach((tab, index) => {
  tab.addEventListener("click", () => {
    const name = tab.getAttribute("aria-controls").replace("panel-", "");
    // A second press on the open tab closes it (the sheet on a phone; the side bar folds on a desktop).
    if (tab.getAttribute("aria-selected") === "true") closePanels();
    else openPanel(name);
  });
  tab.addEventListener("keydown", (event) => {  // the tab list's arrows, as screen reader users expect
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    tabs[(index + step + tabs.length) % tabs.length].focus();
  });
});
for (const panel of document.querySelectorAll('.side [role="tabpanel"]')) panel.tabIndex = -1;
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && window.matchMedia("(max-width: 48rem)").matches && document.body.dataset.panel) {
    const tab = document.querySelector(`.rail [aria-controls="panel-${document.body.dataset.panel}"]`);
    closePanels();
    tab?.focus();
  }
});
// A phone starts with the stage in view and no sheet open; a desktop with the participants beside it.
if (window.matchMedia("(max-width: 48rem)").matches) closePanels();
else openPanel("people");

export function badge(id, count) {
  const element = document.getElementById(id);
  if (!element) return;
  element.textContent = count ? String(count) : "";
  element.hidden = !count;
}

const LINK = /\bhttps?:\/\/[^\s<>"']+/g;

// Text as text nodes; http(s) addresses as links that open apart from the room (no javascript:, no opener).
export function appendText(element, text) {
  let last = 0;
  for (const match of text.matchAll(LINK)) {
    let address = match[0].replace(/[.,;:!?)]+$/, "");
    element.append(document.createTextNode(text.slice(last, match.index)));
    let url = null;
    try {
      url = new URL(address);
    } catch (error) {
      url = null;
    }
    if (url && (url.protocol === "https:" || url.protocol === "http:")) {
      const link = document.createElement("a");
      link.href = url.href;
      link.textContent = address;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      element.append(link);
    } else {
      element.append(document.createTextNode(address));
    }
    last = match.index + address.length;
  }
  element.append(document.createTextNode(text.slice(last)));
}

// A short two-note sound (no file to fetch): someone waits in the lobby.
let sound = null;
export function chime() {
  try {
    sound = sound || new AudioContext();
    const now = sound.currentTime;
    for (const [offset, frequency] of [[0, 880], [0.18, 660]]) {
      const tone = sound.createOscillator();
      const gain = sound.createGain();
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.15, now + offset);
      gain.gain.exponentialRampToValueAtTime(0.001, now + offset + 0.16);
      tone.connect(gain).connect(sound.destination);
      tone.start(now + offset);
      tone.stop(now + offset + 0.17);
    }
  } catch (error) {
    // no sound here: the badge and the title say it
  }
}
