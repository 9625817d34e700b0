// The room's files (web/room_files.py): share one (the Choose button or a drop, with a progress bar), the list as
// the room pushes it (who, when, size, type), download, preview images, text and PDFs (page by page, by pdf.js) in
// the page, delete (a host, or who shared it). A name or a text is only ever shown as text.

import { drawPage, openPdf } from "./room-pdf.js";

const KINDS = {
  "application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP",
  "application/vnd.oasis.opendocument.text": "ODT", "application/vnd.oasis.opendocument.spreadsheet": "ODS",
  "application/vnd.oasis.opendocument.presentation": "ODP", "application/vnd.oasis.opendocument.graphics": "ODG",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint",
  "application/vnd.ms-office": "Office",
};

export function initFiles({ send: tell, config, texts, badge, announce, onPresent }) {
  const base = `/room/${config.socket.split("/").pop()}/files`;
  const list = document.getElementById("files");
  const input = document.getElementById("file-input");
  const drop = document.getElementById("drop");
  const progress = document.getElementById("file-progress");
  const error = document.getElementById("file-error");
  const mine = new Set();  // the files this page shared (it may delete them)
  let known = null;
  let last = [];
  let allowed = config.host;

  function size(bytes) {
    if (bytes < 1024) return `${bytes} ${texts.bytes}`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function item(f) {
    const li = document.createElement("li");
    li.dataset.id = f.id;
    const name = document.createElement("strong");
    name.className = "file-name";
    name.textContent = f.name;
    const meta = document.createElement("span");
    meta.className = "file-meta";
    const at = new Date(f.at).toLocaleTimeString(document.documentElement.lang, { hour: "2-digit", minute: "2-digit" });
    const kind = f.type === "text/plain" ? texts.kind_text : KINDS[f.type] || f.type;
    meta.textContent = `${f.by} · ${at} · ${size(f.size)} · ${kind}`;
    const actions = document.createElement("span");
    actions.className = "row-actions";
    const download = document.createElement("a");
    download.href = `${base}/${f.id}`;
    download.className = "button small secondary";
    download.textContent = texts.download;
    download.setAttribute("aria-label", `${texts.download} — ${f.name}`);
    download.setAttribute("download", "");
    actions.append(download);
    if (f.preview) {
      const look = document.createElement("button");
      look.className = "small secondary";
      look.textContent = texts.preview;
      look.setAttribute("aria-label", `${texts.preview} — ${f.name}`);
      look.type = "button";
      look.dataset.action = "preview";
      look.addEventListener("click", () => preview(f));
      actions.append(look);
    }
    if (f.type === "application/pdf") {
      const show = document.createElement("button");
      show.type = "button";
      show.className = "small secondary";
      show.dataset.action = "present";
      show.textContent = texts.present;
      show.setAttribute("aria-label", `${texts.present} — ${f.name}`);
      show.addEventListener("click", () => onPresent(f.id));
      actions.append(show);
    }
    if (config.host || mine.has(f.id)) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "small secondary";
      remove.dataset.action = "delete";
      remove.textContent = texts.delete;
      remove.setAttribute("aria-label", `${texts.delete} — ${f.name}`);
      remove.addEventListener("click", async () => {
        if (!window.confirm(texts.delete_file_confirm.replace("{name}", f.name))) return;
        const answer = await fetch(`${base}/${f.id}`, { method: "DELETE", headers: { "X-CSRF-Token": config.csrf } });
        if (!answer.ok) error.textContent = (await answer.json().catch(() => ({}))).error || texts.file_failed;
      });
      actions.append(remove);
    }
    li.append(name, meta, actions);
    return li;
  }

  // A PDF's preview: its pages here, one at a time, drawn by pdf.js as the presentation's are.
  const pdfView = { doc: null, page: 1, file: null };
  const pdfCanvas = document.getElementById("preview-pdf");
  const pdfPages = document.getElementById("preview-pages");

  async function pdfPage(step) {
    if (!pdfView.doc) return;
    pdfView.page = Math.max(1, Math.min(pdfView.page + step, pdfView.doc.numPages));
    try {
      await drawPage(pdfView.doc, pdfView.page, pdfCanvas, pdfCanvas.parentElement.clientWidth,
                     window.innerHeight * 0.6);
      pdfCanvas.dataset.page = String(pdfView.page);
    } catch (err) {
      previewError.textContent = texts.present_failed;
    }
    document.getElementById("preview-page").textContent = texts.page_of.replace("{page}", String(pdfView.page))
      .replace("{pages}", String(pdfView.doc.numPages));
    document.getElementById("preview-prev").disabled = pdfView.page <= 1;
    document.getElementById("preview-next").disabled = pdfView.page >= pdfView.doc.numPages;
  }
  document.getElementById("preview-prev").addEventListener("click", () => pdfPage(-1));
  document.getElementById("preview-next").addEventListener("click", () => pdfPage(1));
  const previewError = document.getElementById("preview-error");

  function closePdf() {
    pdfView.doc?.destroy();
    pdfView.doc = pdfView.file = null;
    pdfCanvas.hidden = pdfPages.hidden = true;
    delete pdfCanvas.dataset.page;
  }

  async function preview(f) {
    const figure = document.getElementById("file-preview");
    const image = document.getElementById("preview-image");
    const text = document.getElementById("preview-text");
    document.getElementById("preview-name").textContent = f.name;
    image.hidden = text.hidden = true;
    previewError.textContent = "";
    closePdf();
    if (f.type === "application/pdf") {
      figure.hidden = false;
      pdfView.file = f.id;
      try {
        const doc = await openPdf(`${base}/${f.id}?inline=1`);
        if (pdfView.file !== f.id) { doc.destroy(); return; }  // another preview meanwhile
        pdfView.doc = doc;
        pdfView.page = 1;
        pdfCanvas.hidden = pdfPages.hidden = false;
        await pdfPage(0);
      } catch (err) {
        previewError.textContent = texts.present_failed;
      }
    } else if (f.type.startsWith("image/")) {
      image.src = `${base}/${f.id}?inline=1`;
      image.alt = f.name;
      image.hidden = false;
    } else {
      const answer = await fetch(`${base}/${f.id}?inline=1`);
      text.textContent = (await answer.text()).slice(0, 200_000);  // as text, never as the page's HTML
      text.hidden = false;
    }
    figure.hidden = false;
    document.getElementById("preview-close").focus();
  }

  document.getElementById("preview-close").addEventListener("click", () => {
    closePdf();
    document.getElementById("file-preview").hidden = true;
    document.getElementById("preview-image").removeAttribute("src");
  });

  function show(files) {
    last = files;
    list.replaceChildren(...files.map(item));
    document.getElementById("files-empty").hidden = files.length > 0;
    badge("files-count", files.length);
    if (known) {
      for (const f of files) if (!known.has(f.id) && !mine.has(f.id)) announce(texts.file_shared.replace("{name}", f.by));
    }
    known = new Set(files.map((f) => f.id));
  }

  function send(file) {
    error.textContent = "";
    if (file.size > config.maxFileMb * 1024 * 1024) {
      error.textContent = texts.file_too_large.replace("{mb}", String(config.maxFileMb));
      return;
    }
    const request = new XMLHttpRequest();
    request.open("POST", base);
    request.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
    request.setRequestHeader("X-CSRF-Token", config.csrf);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    progress.hidden = false;
    progress.value = 0;
    request.upload.onprogress = (event) => { if (event.lengthComputable) progress.value = event.loaded / event.total; };
    request.onload = () => {
      progress.hidden = true;
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (err) { /* not JSON: said below */ }
      if (request.status === 201) {
        mine.add(answer.id);
        show(last);  // the room's list may have come before this answer: its Delete button now
        announce(texts.file_sent.replace("{name}", answer.name));
        document.body.dataset.fileSent = answer.id;
      } else {
        error.textContent = answer.error || texts.file_failed;
      }
    };
    request.onerror = () => { progress.hidden = true; error.textContent = texts.file_failed; };
    request.send(file);
  }

  input.addEventListener("change", () => {
    for (const file of input.files) send(file);
    input.value = "";
  });
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (!allowed) return;
    for (const file of event.dataTransfer.files) send(file);
  });
  document.getElementById("guests-upload")?.addEventListener("change", (event) => {
    tell({ type: "settings", guests_upload: event.currentTarget.checked });
  });

  return {
    share: send,
    files: (m) => show(m.list),
    settings(m) {
      allowed = config.host || !!m.guests_upload;
      document.getElementById("file-send").hidden = !allowed;
      document.getElementById("file-host-only").hidden = allowed;
      const box = document.getElementById("guests-upload");
      if (box) box.checked = !!m.guests_upload;
    },
  };
}
