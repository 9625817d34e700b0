// PDFs of the room's files drawn by pdf.js (vendored; its worker parses the file, so a malformed or hostile PDF
// fails there and nothing else stops; no eval, no XFA, glyphs drawn by pdf.js itself rather than handed to the
// browser's font engine, the standard fonts vendored with it). Used by the presentation and the files' preview.

import * as pdfjs from "./vendor/pdfjs/pdf.min.js";

pdfjs.GlobalWorkerOptions.workerSrc = "/static/vendor/pdfjs/pdf.worker.min.js";

export function openPdf(url) {
  return pdfjs.getDocument({ url, isEvalSupported: false, enableXfa: false, disableFontFace: true,
                             withCredentials: true, standardFontDataUrl: "/static/vendor/pdfjs/standard_fonts/" })
    .promise;
}

// Page `number` of `doc` on `canvas`, as large as fits width × height (css pixels), sharp on this screen: its css
// size [width, height].
export async function drawPage(doc, number, canvas, width, height) {
  const page = await doc.getPage(number);
  const natural = page.getViewport({ scale: 1 });
  const scale = Math.min(width / natural.width, height / natural.height);
  const ratio = window.devicePixelRatio || 1;
  const viewport = page.getViewport({ scale: scale * ratio });
  canvas.width = Math.floor(viewport.width);
  canvas.height = Math.floor(viewport.height);
  canvas.style.width = `${Math.floor(viewport.width / ratio)}px`;
  canvas.style.height = `${Math.floor(viewport.height / ratio)}px`;
  await page.render({ canvasContext: canvas.getContext("2d"), viewport }).promise;
  return [viewport.width / ratio, viewport.height / ratio];
}
