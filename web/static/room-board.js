// The room's whiteboard (web/board.py keeps it, in the room's hub): drawn here from its model on a canvas, every
// change sent as an operation and drawn when the hub sends it back to everyone, in its one order. Pen and
// highlighter strokes are smoothed by perfect-freehand (vendored); coordinates are fractions of the page, so every
// screen draws the same board. A text is drawn as text on the canvas, never as the page's HTML.

import { getStroke } from "./vendor/perfect-freehand/index.js";

const RATIO = 4 / 3;  // a board page's shape (width / height)
const SEND_MS = 50;  // a stroke being drawn goes out at most 20 times a second

export function initBoard({ send, config, texts, onStage, files }) {
  const box = document.getElementById("board");
  const canvas = document.getElementById("board-canvas");
  const context = canvas.getContext("2d");
  const state = { pages: [[]], seq: 0, page: 0, tool: "pen", colour: "#1f2328", width: 4, open: false,
                  hostsOnly: false, drawing: null, shape: null, ids: 0 };
  window.passerelleBoard = state;  // tests read the model and the canvas

  const mayDraw = () => config.host || !state.hostsOnly;

  // -- drawing the model ------------------------------------------------------------------------------------------

  function size() {
    const frame = canvas.parentElement;
    const width = Math.min(frame.clientWidth, (window.innerHeight * 0.6) * RATIO);
    const ratio = window.devicePixelRatio || 1;
    canvas.style.width = `${Math.floor(width)}px`;
    canvas.style.height = `${Math.floor(width / RATIO)}px`;
    canvas.width = Math.floor(width * ratio);
    canvas.height = Math.floor((width / RATIO) * ratio);
  }

  function draw() {
    if (!state.open) return;
    const w = canvas.width, h = canvas.height;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, w, h);
    for (const item of state.pages[state.page] || []) paint(item, w, h);
    if (state.shape) paint(state.shape, w, h);
    canvas.dataset.objects = String((state.pages[state.page] || []).length);
    document.getElementById("board-page").textContent = texts.page_of.replace("{page}", String(state.page + 1))
      .replace("{pages}", String(state.pages.length));
    document.getElementById("board-prev").disabled = state.page === 0;
    document.getElementById("board-next").disabled = state.page >= state.pages.length - 1;
  }

  function paint(item, w, h) {
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
      context.font = `${Math.max(10, item.width * scale / 60)}px system-ui, sans-serif`;
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

  // -- what the hub sends ---------------------------------------------------------------------------------------

  const own = new Map();  // this page's strokes: id → all their points, as drawn here (their echoes add nothing)

  function apply(m) {
    state.seq = m.seq;
    const page = state.pages[m.page];
    if (m.op === "add" && page) {
      const item = own.has(m.object.id) ? { ...m.object, points: own.get(m.object.id) } : m.object;
      page.splice(Math.min(m.at ?? page.length, page.length), 0, item);
    } else if (m.op === "extend" && page && !own.has(m.id)) {
      page.find((o) => o.id === m.id)?.points.push(...m.points);
    } else if (m.op === "erase" && page) {
      const index = page.findIndex((o) => o.id === m.id);
      if (index >= 0) page.splice(index, 1);
    } else if (m.op === "clear" && page) {
      page.length = 0;
    } else if (m.op === "page") {
      state.pages.push([]);
    }
    draw();
  }

  // -- drawing with the pointer ---------------------------------------------------------------------------------

  function at(event) {
    const rect = canvas.getBoundingClientRect();
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

  function nearest(point) {
    const [x, y] = point;
    const items = state.pages[state.page] || [];
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

  canvas.addEventListener("pointerdown", (event) => {
    if (!mayDraw()) return;
    canvas.setPointerCapture(event.pointerId);
    const point = at(event);
    const common = { colour: state.colour, width: state.width };
    if (state.tool === "pen" || state.tool === "highlighter") {
      state.drawing = { id: newId(), page: state.page, points: [point] };
      own.set(state.drawing.id, state.drawing.points);
      send({ type: "board", op: "add", page: state.page, object: { ...common, id: state.drawing.id, kind: state.tool,
                                                                   points: [point] } });
    } else if (state.tool === "eraser") {
      const item = nearest(point);
      if (item) send({ type: "board", op: "erase", page: state.page, id: item.id });
    } else if (state.tool === "text") {
      const text = window.prompt(texts.board_text);
      if (text && text.trim()) {
        send({ type: "board", op: "add", page: state.page, object: { ...common, id: newId(), kind: "text", at: point,
                                                                     text: text.trim().slice(0, 500) } });
      }
    } else {
      state.shape = { ...common, id: newId(), kind: state.tool, from: point, to: point };
    }
  });
  canvas.addEventListener("pointermove", (event) => {
    const point = at(event);
    if (state.drawing) {
      state.drawing.points.push(point);
      pending.push(point);
      if (pending.length >= 190) flush();
      else if (!flushTimer) flushTimer = setTimeout(flush, SEND_MS);
      const item = (state.pages[state.drawing.page] || []).find((o) => o.id === state.drawing.id);
      if (item) item.points = state.drawing.points;
      draw();
    } else if (state.shape) {
      state.shape.to = point;
      draw();
    } else if (state.tool === "eraser" && event.buttons) {
      const item = nearest(point);
      if (item) send({ type: "board", op: "erase", page: state.page, id: item.id });
    }
  });
  const end = () => {
    if (state.drawing) {
      clearTimeout(flushTimer);
      flush();
      state.drawing = null;
    }
    if (state.shape) {
      const { from, to } = state.shape;
      if (Math.abs(from[0] - to[0]) + Math.abs(from[1] - to[1]) > 0.005) {
        send({ type: "board", op: "add", page: state.page, object: state.shape });
      }
      state.shape = null;
      draw();
    }
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  // -- the controls ---------------------------------------------------------------------------------------------

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
  document.getElementById("board-undo").addEventListener("click", () => send({ type: "board", op: "undo" }));
  document.getElementById("board-redo").addEventListener("click", () => send({ type: "board", op: "redo" }));
  document.getElementById("board-clear")?.addEventListener("click", () => {
    if (window.confirm(texts.board_clear_confirm)) send({ type: "board", op: "clear", page: state.page });
  });
  document.getElementById("board-add-page").addEventListener("click", () => send({ type: "board", op: "page" }));
  document.getElementById("board-prev").addEventListener("click", () => { state.page -= 1; draw(); });
  document.getElementById("board-next").addEventListener("click", () => { state.page += 1; draw(); });
  document.getElementById("board-export").addEventListener("click", () => {
    canvas.toBlob((blob) => {
      if (blob) files.share(new File([blob], texts.board_file.replace("{page}", String(state.page + 1)),
                                     { type: "image/png" }));
    }, "image/png");
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
      draw();
    }
  });
  window.addEventListener("resize", () => { if (state.open) { size(); draw(); } });

  return {
    welcome(m) { state.myId = m.you; },
    board(m) {
      state.pages = m.pages.map((page) => page.slice());
      state.seq = m.seq;
      state.page = Math.min(state.page, state.pages.length - 1);
      draw();
    },
    op: apply,
    settings(m) {
      state.hostsOnly = !!m.board_hosts_only;
      document.getElementById("board-tools").hidden = !mayDraw();
      document.getElementById("board-hosts-only-line").hidden = mayDraw();
      const check = document.getElementById("board-hosts-only");
      if (check) check.checked = state.hostsOnly;
    },
  };
}
