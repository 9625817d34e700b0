// A presentation: a PDF of the room's files shown to everyone on the stage, page by page, rendered here by pdf.js
// (room-pdf.js: a malformed or hostile PDF fails in its worker, is said, and nothing else stops).
// The presenter turns the pages and the others follow, or browse on their own and come back. Over the page, the
// board's layer for it ("pdf:<file>:<page>"): everyone sees what was drawn on that page, and those who may draw
// annotate it after pressing "Annotate".

import { drawPage, openPdf } from "./room-pdf.js";

export function initPresent({ send, config, texts, onStage, notes }) {
  const base = `/room/${config.socket.split("/").pop()}/files`;
  const box = document.getElementById("presentation");
  const canvas = document.getElementById("present-canvas");
  const follow = document.getElementById("present-follow");
  const error = document.getElementById("present-error");
  const state = { current: null, doc: null, file: null, page: 1, pages: 0, myId: null, loading: null, drawn: 0 };
  window.passerellepresent = state;  // tests read the page shown

  const presenting = () => state.current && state.current.by === state.myId;
  const annotate = document.getElementById("present-annotate");
  let layer = null;  // the board's layer over the page shown (made at the first page: the board comes after)
  const notesLayer = () => {
    layer ||= notes().layer(document.getElementById("present-notes"), {
      target: () => (state.doc && state.current && state.shown ? `pdf:${state.file}:${state.page}` : null),
      owner: () => !!presenting(),
      home: canvas.parentElement,
    });
    return layer;
  };

  async function load(file) {
    state.shown = false;
    state.doc?.destroy();
    state.doc = null;
    state.file = file;
    error.textContent = "";
    canvas.hidden = false;
    try {
      const doc = await openPdf(`${base}/${file}?inline=1`);
      if (state.file !== file) { doc.destroy(); return; }  // another came meanwhile
      state.doc = doc;
      state.pages = doc.numPages;
    } catch (err) {
      canvas.hidden = true;
      error.textContent = texts.present_failed;
      document.body.dataset.present = "failed";
    }
  }

  let queue = Promise.resolve();

  function show(page) {
    queue = queue.then(async () => {
      if (!state.doc) return;
      state.page = Math.max(1, Math.min(page, state.pages));
      try {
        const [width, height] = await drawPage(state.doc, state.page, canvas, canvas.parentElement.clientWidth,
                                               window.innerHeight * 0.55);
        state.shown = true;
        notesLayer().fit(width, height, canvas.offsetLeft, canvas.offsetTop);
        state.drawn += 1;
        canvas.dataset.page = String(state.page);
        document.body.dataset.present = "shown";
      } catch (err) {
        error.textContent = texts.present_failed;
        document.body.dataset.present = "failed";
      }
      controls();
    });
    return queue;
  }

  function controls() {
    const mine = presenting();
    document.getElementById("present-page").textContent = texts.page_of.replace("{page}", String(state.page))
      .replace("{pages}", String(state.pages || "?"));
    document.getElementById("present-prev").disabled = state.page <= 1;
    document.getElementById("present-next").disabled = state.page >= state.pages;
    document.getElementById("present-follow-row").hidden = mine;
    document.getElementById("present-back").hidden = mine || follow.checked || !state.current
      || state.page === state.current.page;
    document.getElementById("present-stop").hidden = !(mine || config.host);
    annotate.hidden = !state.shown || !notes().mayDraw();
    const on = !!layer && layer.annotating;
    annotate.setAttribute("aria-pressed", String(on));
    annotate.textContent = on ? annotate.dataset.on : annotate.dataset.off;
  }

  function turn(step) {
    const page = state.page + step;
    if (presenting()) send({ type: "present", file: state.current.file, page });
    else {
      follow.checked = false;
      show(page);
    }
  }

  document.getElementById("present-prev").addEventListener("click", () => turn(-1));
  document.getElementById("present-next").addEventListener("click", () => turn(1));
  follow.addEventListener("change", () => { if (follow.checked && state.current) show(state.current.page); });
  document.getElementById("present-back").addEventListener("click", () => {
    follow.checked = true;
    if (state.current) show(state.current.page);
  });
  document.getElementById("present-stop").addEventListener("click", () => send({ type: "present-stop" }));
  annotate.addEventListener("click", () => {
    notesLayer().annotate(!layer.annotating);
    controls();
  });

  let resizing = null;  // the page drawn again for the new size (and its annotations laid over it again)
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (state.shown) show(state.page); }, 150);
  });

  return {
    welcome(m) { state.myId = m.you; },
    settings() { if (state.current) controls(); },
    present(file) { send({ type: "present", file, page: 1 }); },
    async presentation(m) {
      if (!m.file) {
        layer?.annotate(false);
        state.shown = false;
        layer?.redraw();
        state.current = null;
        state.doc?.destroy();
        state.doc = state.file = null;
        box.hidden = true;
        document.body.dataset.present = "";
        onStage();
        return;
      }
      const fresh = !state.current || state.current.file !== m.file;
      state.current = m;
      box.hidden = false;
      document.getElementById("present-title").textContent = texts.presents.replace("{name}", m.by_name)
        .replace("{file}", m.name);
      onStage();
      if (fresh) {
        follow.checked = true;
        state.loading = load(m.file);
      }
      await state.loading;
      if (fresh || follow.checked || presenting()) await show(m.page);
      else controls();
    },
  };
}
