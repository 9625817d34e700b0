// The room's whiteboard (web/board.py keeps it, in the room's hub): drawn here from its model on canvases, every
// change sent as an operation and drawn when the hub sends it back to everyone, in its one order. Pen and
// highlighter strokes are smoothed by perfect-freehand (vendored); coordinates are fractions of the page, so every
// screen draws the same board. A text is typed in a field over the canvas and drawn as text on the canvas, never
// as the page's HTML.
//
// The same drawing serves the board's own pages and its layers: annotations over a presented PDF page
// ("pdf:<file>:<page>") and over a paused screen share ("screen:<leg>"), each a transparent canvas laid exactly
// over the picture (surfaces). One tool bar serves them all: it moves to the surface being drawn on.

import { getStroke } from "./vendor/perfect-freehand/index.js";

const RATIO = 4 / 3;  // a board page's shape (width / height)
const SEND_MS = 50;  // a stroke being drawn goes out at most 20 times a second
const PDF_W = 1600, PDF_H = 1200;  // pixels of a board page in the PDF export (800 × 600 points)

// -- painting one object on a 2D context of w × h pixels --------------------------------------------------------

function paint(context, item, w, h) {
  const scale = Math.min(w, h);
  context.save();
  context.strokeStyle = context.fillStyle = item.colour;
  context.lineWidth = item.width * scale / 500;
  context.lineCap = context.lineJoin = "round";
  if (item.kind === "pen" || item.kind === "highlighter") {
    if (item.kind === "highlighter") context.globalAlpha = 0.35;
    const outline = getStroke(item.points.map(([x, y]) => [x * w, y * h]), {
      size: (item.kind === "highlighter" ? 3 : 1) * item.width * scale / 250, thinning: 0.5, smoothing: 0.5,
      streamline: 0.5 });
    if (outline.length) {
      context.beginPath();
      context.moveTo(outline[0][0], outline[0][1]);
      for (const [x, y] of outline.slice(1)) context.lineTo(x, y);
      context.closePath();
      context.fill();
    }
  } else if (item.kind === "text") {
    context.font = `${textPx(item.width, scale)}px system-ui, sans-serif`;
    context.textBaseline = "top";
    context.fillText(item.text, item.at[0] * w, item.at[1] * h);
  } else {
    const [x1, y1] = [item.from[0] * w, item.from[1] * h], [x2, y2] = [item.to[0] * w, item.to[1] * h];
    context.beginPath();
    if (item.kind === "rect") context.rect(Math.min(x1, x2), Math.min(y1, y2), Math.abs(x2 - x1), Math.abs(y2 - y1));
    else if (item.kind === "ellipse") {
      context.ellipse((x1 + x2) / 2, (y1 + y2) / 2, Math.abs(x2 - x1) / 2, Math.abs(y2 - y1) / 2, 0, 0, 2 * Math.PI);
    } else {
      context.moveTo(x1, y1);
      context.lineTo(x2, y2);
      if (item.kind === "arrow") {
        const angle = Math.atan2(y2 - y1, x2 - x1), head = 4 * context.lineWidth + 8;
        for (const side of [-1, 1]) {
          context.moveTo(x2, y2);
          context.lineTo(x2 - head * Math.cos(angle + side * 0.45), y2 - head * Math.sin(angle + side * 0.45));
        }
      }
    }
    context.stroke();
  }
  context.restore();
}

const textPx = (width, scale) => Math.max(10, width * scale / 60);

// -- a PDF of the board's pages, each an image (lossless: Flate, by the browser's own CompressionStream) ---------

async function deflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function boardPdf(pages) {
  const canvas = document.createElement("canvas");
  canvas.width = PDF_W;
  canvas.height = PDF_H;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const encoder = new TextEncoder();
  const chunks = [encoder.encode("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")];
  let length = chunks[0].length;
  const offsets = [];
  const put = (number, ...parts) => {
    offsets[number] = length;
    for (const part of [`${number} 0 obj\n`, ...parts, "\nendobj\n"]) {
      const bytes = typeof part === "string" ? encoder.encode(part) : part;
      chunks.push(bytes);
      length += bytes.length;
    }
  };
  // 1 the catalogue, 2 the page tree, then for page n: 3n its page, 3n+1 its content, 3n+2 its image
  const kids = pages.map((_, n) => `${3 * n + 3} 0 R`).join(" ");
  put(1, "<< /Type /Catalog /Pages 2 0 R >>");
  put(2, `<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`);
  for (const [n, items] of pages.entries()) {
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, PDF_W, PDF_H);
    for (const item of items) paint(context, item, PDF_W, PDF_H);
    const rgba = context.getImageData(0, 0, PDF_W, PDF_H).data;
    const rgb = new Uint8Array(PDF_W * PDF_H * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
    }
    const image = await deflate(rgb);
    const draw = `q 800 0 0 600 0 0 cm /Im0 Do Q`;
    put(3 * n + 3, `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 800 600] /Contents ${3 * n + 4} 0 R `
        + `/Resources << /XObject << /Im0 ${3 * n + 5} 0 R >> >> >>`);
    put(3 * n + 4, `<< /Length ${draw.length} >>\nstream\n${draw}\nendstream`);
    put(3 * n + 5, `<< /Type /XObject /Subtype /Image /Width ${PDF_W} /Height ${PDF_H} /ColorSpace /DeviceRGB `
        + `/BitsPerComponent 8 /Filter /FlateDecode /Length ${image.length} >>\nstream\n`, image, "\nendstream");
  }
  const count = 3 * pages.length + 3;
  const xref = [`xref\n0 ${count}\n0000000000 65535 f \n`];
  for (let number = 1; number < count; number += 1) xref.push(`${String(offsets[number]).padStart(10, "0")} 00000 n \n`);
  xref.push(`trailer\n<< /Size ${count} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`);
  chunks.push(encoder.encode(xref.join("")));
  return new Blob(chunks, { type: "application/pdf" });
}

export function initBoard({ send, config, texts, onStage, files }) {
  const box = document.getElementById("board");
  const tools = document.getElementById("board-tools");
  const toolsHome = { parent: tools.parentElement, next: tools.nextElementSibling };
  const clearButton = document.getElementById("board-clear");
  const error = document.getElementById("board-error");
  const state = { pages: [[]], layers: {}, seq: 0, page: 0, tool: "pen", colour: "#1f2328", width: 4, open: false,
                  hostsOnly: false, drawing: null, shape: null, ids: 0, active: null, typing: null };
  window.passerelleBoard = state;  // tests read the model and the canvases

  const mayDraw = () => config.host || !state.hostsOnly;
  const surfaces = new Set();
  const itemsOf = (page) => (typeof page === "number" ? state.pages[page] : state.layers[page]) || [];

  // -- surfaces: a canvas that shows one page (or layer) of the board, and is drawn on while active -------------

  function surface(canvas, { target, fill = null, owner = () => false, home = null }) {
    const s = { canvas, context: canvas.getContext("2d"), target, fill, owner, home };
    surfaces.add(s);
    canvas.addEventListener("pointerdown", (event) => down(s, event));
    canvas.addEventListener("pointermove", (event) => move(s, event));
    canvas.addEventListener("pointerup", () => end(s));
    canvas.addEventListener("pointercancel", () => end(s));
    return s;
  }

  // The canvas laid over a picture of css width × height at (left, top) of its frame.
  function fit(s, width, height, left = 0, top = 0) {
    const ratio = window.devicePixelRatio || 1;
    Object.assign(s.canvas.style, { width: `${Math.floor(width)}px`, height: `${Math.floor(height)}px`,
                                    left: `${left}px`, top: `${top}px` });
    s.canvas.width = Math.max(1, Math.floor(width * ratio));
    s.canvas.height = Math.max(1, Math.floor(height * ratio));
    draw(s);
  }

  function draw(s) {
    const w = s.canvas.width, h = s.canvas.height, page = s.target();
    s.context.setTransform(1, 0, 0, 1, 0, 0);
    s.context.clearRect(0, 0, w, h);
    if (s.fill) {
      s.context.fillStyle = s.fill;
      s.context.fillRect(0, 0, w, h);
    }
    if (page === null) {
      s.canvas.dataset.objects = "0";
      return;
    }
    const items = itemsOf(page);
    for (const item of items) paint(s.context, item, w, h);
    if (state.shape && state.shape.surface === s) paint(s.context, state.shape.object, w, h);
    s.canvas.dataset.objects = String(items.length);
    s.canvas.dataset.target = String(page);
  }

  function redraw(pages) {
    for (const s of surfaces) {
      const page = s.target();
      if (page !== null && (!pages || pages.has(page))) draw(s);
    }
    if (board) pageControls();
  }

  // The surface the tool bar is on, drawn on with the pointer (null: none).
  function activate(s) {
    commitText();
    if (state.active && state.active !== s) state.active.canvas.classList.remove("annotating");
    state.active = s;
    if (s) {
      s.canvas.classList.add("annotating");
      s.home.before(tools);
    } else {
      toolsHome.parent.insertBefore(tools, toolsHome.next);
    }
    showTools();
  }

  function showTools() {
    tools.hidden = !mayDraw();
    if (clearButton) clearButton.hidden = !(config.host || (state.active && state.active.owner()));
    document.getElementById("board-hosts-only-line").hidden = mayDraw();
    error.textContent = "";
  }

  // -- what the hub sends ---------------------------------------------------------------------------------------

  const own = new Map();  // this page's strokes: id → all their points, as drawn here (their echoes add nothing)

  function apply(m) {
    if (m.seq <= state.seq) return;  // already in the board this page was given
    state.seq = m.seq;
    if (m.op === "page") {
      state.pages.push([]);
      return;
    }
    if (typeof m.page === "string" && !state.layers[m.page]) state.layers[m.page] = [];
    const page = typeof m.page === "number" ? state.pages[m.page] : state.layers[m.page];
    if (!page) return;
    if (m.op === "add") {
      const item = own.has(m.object.id) ? { ...m.object, points: own.get(m.object.id) } : m.object;
      page.splice(Math.min(m.at ?? page.length, page.length), 0, item);
    } else if (m.op === "extend" && !own.has(m.id)) {
      page.find((o) => o.id === m.id)?.points.push(...m.points);
    } else if (m.op === "erase") {
      erasing.delete(m.id);
      const index = page.findIndex((o) => o.id === m.id);
      if (index >= 0) page.splice(index, 1);
    } else if (m.op === "clear") {
      page.length = 0;
    }
  }

  // -- drawing with the pointer ---------------------------------------------------------------------------------

  function at(s, event) {
    const rect = s.canvas.getBoundingClientRect();
    const clamp = (v) => Math.max(0, Math.min(1, Math.round(v * 10000) / 10000));
    return [clamp((event.clientX - rect.left) / rect.width), clamp((event.clientY - rect.top) / rect.height)];
  }

  function newId() {
    state.ids += 1;
    return `${(state.myId || "p").replace(/[^A-Za-z0-9_-]/g, "")}-${Date.now().toString(36)}-${state.ids}`;
  }

  let pending = [];
  let flushTimer = null;

  function flush() {
    flushTimer = null;
    if (!state.drawing || !pending.length) return;
    send({ type: "board", op: "extend", page: state.drawing.page, id: state.drawing.id, points: pending });
    pending = [];
  }

  function nearest(page, point) {
    const [x, y] = point;
    const items = itemsOf(page);
    for (let i = items.length - 1; i >= 0; i -= 1) {
      const item = items[i];
      const points = item.points || (item.from ? [item.from, item.to] : [item.at]);
      const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
      const pad = 0.02;
      if (x >= Math.min(...xs) - pad && x <= Math.max(...xs) + pad && y >= Math.min(...ys) - pad
          && y <= Math.max(...ys) + pad) return item;
    }
    return null;
  }

  const erasing = new Set();  // erased here, not yet back from the hub: an eraser dragged over it sends it once

  function erase(page, item) {
    if (!item || erasing.has(item.id)) return;
    erasing.add(item.id);
    send({ type: "board", op: "erase", page, id: item.id });
  }

  function down(s, event) {
    if (s === board && state.open && state.active !== board) activate(board);  // back to the board from a layer
    const page = s.target();
    if (s !== state.active || !mayDraw() || page === null) return;
    if (state.typing) {
      commitText();
      return;
    }
    s.canvas.setPointerCapture(event.pointerId);
    const point = at(s, event);
    const common = { colour: state.colour, width: state.width };
    if (state.tool === "pen" || state.tool === "highlighter") {
      state.drawing = { id: newId(), page, points: [point], surface: s };
      own.set(state.drawing.id, state.drawing.points);
      send({ type: "board", op: "add", page, object: { ...common, id: state.drawing.id, kind: state.tool,
                                                       points: [point] } });
    } else if (state.tool === "eraser") {
      erase(page, nearest(page, point));
    } else if (state.tool === "text") {
      event.preventDefault();  // the field keeps the focus
      typeText(s, page, point);
    } else {
      state.shape = { surface: s, page, object: { ...common, id: newId(), kind: state.tool, from: point, to: point } };
    }
  }

  function move(s, event) {
    if (s !== state.active) return;
    const point = at(s, event);
    if (state.drawing && state.drawing.surface === s) {
      state.drawing.points.push(point);
      pending.push(point);
      if (pending.length >= 190) flush();
      else if (!flushTimer) flushTimer = setTimeout(flush, SEND_MS);
      const item = itemsOf(state.drawing.page).find((o) => o.id === state.drawing.id);
      if (item) item.points = state.drawing.points;
      draw(s);
    } else if (state.shape && state.shape.surface === s) {
      state.shape.object.to = point;
      draw(s);
    } else if (state.tool === "eraser" && event.buttons && s.target() !== null) {
      erase(s.target(), nearest(s.target(), point));
    }
  }

  function end(s) {
    if (state.drawing) {
      clearTimeout(flushTimer);
      flush();
      state.drawing = null;
    }
    if (state.shape) {
      const { page, object } = state.shape;
      if (Math.abs(object.from[0] - object.to[0]) + Math.abs(object.from[1] - object.to[1]) > 0.005) {
        send({ type: "board", op: "add", page, object });
      }
      state.shape = null;
      draw(s);
    }
  }

  // A text: a field where the pointer was, in the text's own size; Enter (or a click elsewhere) puts it on the
  // board, Escape drops it. What is typed goes as a string in JSON and is drawn by fillText.
  function typeText(s, page, point) {
    const field = document.createElement("input");
    field.type = "text";
    field.className = "board-text";
    field.maxLength = 500;
    field.setAttribute("aria-label", texts.board_text);
    field.dataset.testid = "board-text";
    const rect = s.canvas.getBoundingClientRect();
    const scale = Math.min(rect.width, rect.height);
    Object.assign(field.style, { left: `${s.canvas.offsetLeft + point[0] * rect.width}px`,
                                 top: `${s.canvas.offsetTop + point[1] * rect.height}px`,
                                 fontSize: `${textPx(state.width, scale)}px`, color: state.colour,
                                 maxWidth: `${Math.max(80, rect.width * (1 - point[0]))}px` });
    s.canvas.parentElement.append(field);
    state.typing = { field, page, point, colour: state.colour, width: state.width };
    field.addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); commitText(); }
      else if (event.key === "Escape") { event.preventDefault(); commitText(false); }
    });
    field.addEventListener("blur", () => commitText());
    field.focus();
  }

  function commitText(keep = true) {
    const typing = state.typing;
    if (!typing) return;
    state.typing = null;
    const text = typing.field.value.trim().slice(0, 500);
    typing.field.remove();
    if (keep && text) {
      send({ type: "board", op: "add", page: typing.page, object: { id: newId(), kind: "text", at: typing.point,
                                                                    colour: typing.colour, width: typing.width,
                                                                    text } });
    }
    state.active?.canvas.focus?.();
  }

  // -- the board's own pages, and its controls --------------------------------------------------------------------

  const canvas = document.getElementById("board-canvas");
  const board = surface(canvas, { target: () => (state.open ? state.page : null), fill: "#ffffff",
                                  home: canvas.parentElement });

  function size() {
    const frame = canvas.parentElement;
    const width = Math.min(frame.clientWidth, (window.innerHeight * 0.6) * RATIO);
    fit(board, width, width / RATIO);
  }

  function pageControls() {
    document.getElementById("board-page").textContent = texts.page_of.replace("{page}", String(state.page + 1))
      .replace("{pages}", String(state.pages.length));
    document.getElementById("board-prev").disabled = state.page === 0;
    document.getElementById("board-next").disabled = state.page >= state.pages.length - 1;
  }

  for (const button of document.querySelectorAll("#board-tools [data-tool]")) {
    button.addEventListener("click", () => {
      state.tool = button.dataset.tool;
      for (const other of document.querySelectorAll("#board-tools [data-tool]")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
    });
  }
  for (const swatch of document.querySelectorAll("#board-colours [data-colour]")) {
    swatch.addEventListener("click", () => {
      state.colour = swatch.dataset.colour;
      for (const other of document.querySelectorAll("#board-colours [data-colour]")) {
        other.setAttribute("aria-pressed", String(other === swatch));
      }
    });
  }
  document.getElementById("board-width").addEventListener("change", (event) => {
    state.width = Number(event.currentTarget.value);
  });
  const activePage = () => state.active?.target() ?? state.page;
  document.getElementById("board-undo").addEventListener("click", () => {
    send({ type: "board", op: "undo", page: activePage() });
  });
  document.getElementById("board-redo").addEventListener("click", () => {
    send({ type: "board", op: "redo", page: activePage() });
  });
  clearButton?.addEventListener("click", () => {
    if (window.confirm(texts.board_clear_confirm)) send({ type: "board", op: "clear", page: activePage() });
  });
  document.getElementById("board-add-page").addEventListener("click", () => send({ type: "board", op: "page" }));
  document.getElementById("board-prev").addEventListener("click", () => { state.page -= 1; draw(board); pageControls(); });
  document.getElementById("board-next").addEventListener("click", () => { state.page += 1; draw(board); pageControls(); });
  document.getElementById("board-export").addEventListener("click", () => {
    canvas.toBlob((blob) => {
      if (blob) files.share(new File([blob], texts.board_file.replace("{page}", String(state.page + 1)),
                                     { type: "image/png" }));
    }, "image/png");
  });
  document.getElementById("board-export-pdf").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const blob = await boardPdf(state.pages);
      files.share(new File([blob], texts.board_pdf_file, { type: "application/pdf" }));
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById("board-hosts-only")?.addEventListener("change", (event) => {
    send({ type: "settings", board_hosts_only: event.currentTarget.checked });
  });
  const toggle = document.getElementById("board-toggle");
  toggle.addEventListener("click", () => {
    state.open = !state.open;
    toggle.setAttribute("aria-pressed", String(state.open));
    box.hidden = !state.open;
    onStage();
    if (state.open) {
      size();
      pageControls();
      activate(board);
    } else if (state.active === board) {
      activate(null);
    }
  });
  window.addEventListener("resize", () => { if (state.open) size(); });

  return {
    welcome(m) { state.myId = m.you; },
    board(m) {
      state.pages = m.pages.map((page) => page.slice());
      state.layers = Object.fromEntries(Object.entries(m.layers || {}).map(([k, v]) => [k, v.slice()]));
      state.seq = m.seq;
      state.page = Math.min(state.page, state.pages.length - 1);
      redraw(null);
    },
    ops(m) {
      const touched = new Set();
      for (const op of m.ops) {
        apply(op);
        if (op.page !== undefined) touched.add(op.page);
      }
      redraw(touched);
    },
    settings(m) {
      state.hostsOnly = !!m.board_hosts_only;
      showTools();
      const check = document.getElementById("board-hosts-only");
      if (check) check.checked = state.hostsOnly;
    },
    mayDraw,
    // A layer over a picture: `target()` names it (null: nothing to show), `owner()` may clear it; drawn on once
    // `annotate(layer, true)`, the tool bar then before `home`.
    layer(canvasElement, { target, owner, home }) {
      const s = surface(canvasElement, { target, owner, home });
      return {
        fit: (width, height, left, top) => fit(s, width, height, left, top),
        redraw: () => draw(s),
        annotate(on) {
          if (on) activate(s);
          else if (state.active === s) activate(state.open ? board : null);
        },
        get annotating() { return state.active === s; },
        remove() {
          if (state.active === s) activate(state.open ? board : null);
          surfaces.delete(s);
        },
      };
    },
  };
}
