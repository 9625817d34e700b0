"""Files shared in a room: what may come in (its type decided from its bytes, its size, the conference's quota, an
optional virus scan by ClamAV's clamd), where it is kept (``[files] folder``, by a random name, never the
upload's), who may take it back out, and what the audit trail says of it (ids, sizes and types: a file's name may
name a patient, and its bytes are health data — neither is ever logged).

The allow-list: PDF, PNG, JPEG, WebP, plain text (UTF-8, no control characters), OpenDocument (text, spreadsheet,
presentation, drawing) and Office documents (Word, Excel, PowerPoint: the current zip formats without macros, and
the older binary ones). Anything else is refused, an executable renamed ``.pdf`` first among them.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import secrets
import socket
import struct
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config.errors import PasserelleError
from rooms.errors import NotFoundError
from rooms.models import AuditEvent, AuditKind, Conference, RoomFile

PREVIEWED = frozenset({"application/pdf", "image/png", "image/jpeg", "image/webp", "text/plain"})
ODF = {
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.oasis.opendocument.graphics",
}
OOXML = {  # the folder a document of each kind has in its zip
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the older Office documents (Compound File Binary)
EXECUTABLES = (b"MZ", b"\x7fELF", b"#!", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa")
CHUNK = 64 * 1024


class FileRefused(PasserelleError):
    """A file that does not come in: ``reason`` is a code (for the audit trail and the page), ``message`` a
    sentence for the person who sent it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class ScanUnavailable(PasserelleError):
    """clamd is configured but does not answer: nothing comes in unscanned."""


def sniff(path: Path) -> str:
    """The file's type from its bytes (the allow-list), or FileRefused."""
    with path.open("rb") as f:
        head = f.read(4096)
    if not head:
        raise FileRefused("empty", "This file is empty.")
    if head.startswith(EXECUTABLES):
        raise FileRefused("type", "Programs cannot be shared here.")
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(OLE):
        return "application/vnd.ms-office"
    if head.startswith(b"PK\x03\x04"):
        return _zipped(path)
    if _is_text(path):
        return "text/plain"
    raise FileRefused("type", "This type of file cannot be shared here: PDF, images, text and office documents can.")


def _zipped(path: Path) -> str:
    """An OpenDocument or an Office document (their zip's own marks), or FileRefused."""
    refused = FileRefused("type", "This type of file cannot be shared here: PDF, images, text and office "
                                  "documents can.")  # fmt: skip
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            if names and names[0] == "mimetype":  # OpenDocument: its type, stored first
                kind = z.read("mimetype")[:100].decode("ascii", "replace").strip()
                if kind in ODF:
                    return kind
                raise refused
            if "[Content_Types].xml" in names:
                if any(name.lower().endswith("vbaproject.bin") for name in names):
                    raise FileRefused("macros", "Documents with macros cannot be shared here: save it without them.")
                for folder, kind in OOXML.items():
                    if any(name.startswith(folder) for name in names):
                        return kind
    except (zipfile.BadZipFile, OSError, KeyError, NotImplementedError):
        raise refused from None
    raise refused


def _is_text(path: Path) -> bool:
    """UTF-8 with no control characters but tabs and line ends (nor a byte-order mark's worth of anything else)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
            if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f" for ch in text):
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


class Clamd:
    """ClamAV's daemon on its local socket, asked with INSTREAM: None when clean, else the signature's name."""

    def __init__(self, socket_path: Path, timeout_s: float = 30.0) -> None:
        self.socket_path, self.timeout_s = socket_path, timeout_s

    def scan(self, path: Path) -> str | None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout_s)
                s.connect(str(self.socket_path))
                s.sendall(b"zINSTREAM\0")
                with path.open("rb") as f:
                    while chunk := f.read(CHUNK):
                        s.sendall(struct.pack(">I", len(chunk)) + chunk)
                s.sendall(struct.pack(">I", 0))
                answer = b""
                while not answer.endswith(b"\0"):
                    part = s.recv(4096)
                    if not part:
                        break
                    answer += part
        except OSError as exc:
            raise ScanUnavailable(f"clamd at {self.socket_path} does not answer ({exc.__class__.__name__})") from None
        text = answer.rstrip(b"\0").decode("utf-8", "replace")
        if text.endswith(" OK"):
            return None
        if text.endswith(" FOUND"):
            return text.removeprefix("stream: ").removesuffix(" FOUND")
        raise ScanUnavailable(f"clamd could not scan the file ({text[-80:]})")


@dataclass(frozen=True, slots=True)
class FileView:
    id: uuid.UUID
    conference_id: uuid.UUID
    shared_at: datetime
    name: str
    uploader: str
    uploader_key: str
    media_type: str
    size: int
    sha256: str

    @property
    def previewed(self) -> bool:
        return self.media_type in PREVIEWED

    def as_message(self) -> dict[str, object]:
        """As the room lists it."""
        return {"id": str(self.id), "name": self.name, "by": self.uploader, "at": self.shared_at.isoformat(),
                "size": self.size, "type": self.media_type, "preview": self.previewed}  # fmt: skip


def _view(row: RoomFile) -> FileView:
    return FileView(row.id, row.conference_id, row.shared_at, row.name, row.uploader, row.uploader_key,
                    row.media_type, row.size, row.sha256)  # fmt: skip


def clean_name(raw: str) -> str:
    """A file's name to show and to give back on download: its last path part, printable, at most 120 characters
    (its extension kept), never empty."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C")
    name = " ".join(name.split()).strip(". ")
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 119 - len(ext)] + "." + ext) if dot and len(ext) <= 10 else name[:120]
    return name or "file"


class Files:
    """The rooms' files: ``folder`` holds their bytes, the database what they are."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime], folder: Path, *,
                 max_bytes: int, quota_bytes: int, scanner: Clamd | None = None) -> None:  # fmt: skip
        self._sessions, self._clock, self.folder = sessions, clock, folder
        self.max_bytes, self.quota_bytes, self.scanner = max_bytes, quota_bytes, scanner

    def incoming(self) -> Path:
        """A new file to write an upload into, under ``folder`` (made private), by a random name."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        incoming = self.folder / "incoming"
        incoming.mkdir(exist_ok=True)
        path = incoming / secrets.token_hex(16)
        path.touch(mode=0o600)
        return path

    def used(self, conference_id: uuid.UUID) -> int:
        with self._sessions.begin() as s:
            return int(s.scalar(select(func.coalesce(func.sum(RoomFile.size), 0))
                                .where(RoomFile.conference_id == conference_id)) or 0)  # fmt: skip

    def add(self, conference_id: uuid.UUID, upload: Path, name: str, uploader: str, uploader_key: str) -> FileView:
        """Take in ``upload`` (written by :meth:`incoming`): checked, scanned, then kept; or FileRefused (or
        ScanUnavailable), and the upload is gone either way."""
        try:
            size = upload.stat().st_size
            if size > self.max_bytes:
                raise FileRefused("size", f"This file is larger than {self.max_bytes // 2**20} MB.")
            if self.used(conference_id) + size > self.quota_bytes:
                raise FileRefused("quota", f"This conference's files would be over {self.quota_bytes // 2**20} MB: "
                                           "delete some first.")  # fmt: skip
            media_type = sniff(upload)
            if self.scanner is not None:
                found = self.scanner.scan(upload)
                if found is not None:
                    raise FileRefused("virus", "This file carries a virus: it was not shared.")
            digest = hashlib.sha256()
            with upload.open("rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            stored_as = secrets.token_hex(16)
            row = RoomFile(conference_id=conference_id, shared_at=self._clock(), name=clean_name(name),
                           uploader=uploader[:200], uploader_key=uploader_key, media_type=media_type, size=size,
                           sha256=digest.hexdigest(), stored_as=stored_as)  # fmt: skip
            with self._sessions.begin() as s:
                if s.get(Conference, conference_id) is None:
                    raise NotFoundError(f"no conference {conference_id}")
                s.add(row)
                s.flush()
                os.replace(upload, self.folder / stored_as)
                s.add(self._audit(AuditKind.FILE_UPLOADED, row))
                return _view(row)
        except FileRefused as refused:
            with self._sessions.begin() as s:
                s.add(AuditEvent(at=self._clock(), kind=AuditKind.FILE_REFUSED, conference_id=conference_id,
                                 detail={"reason": refused.reason}))  # fmt: skip
            raise
        finally:
            upload.unlink(missing_ok=True)

    def _audit(self, kind: AuditKind, row: RoomFile) -> AuditEvent:
        return AuditEvent(at=self._clock(), kind=kind, conference_id=row.conference_id,
                          detail={"file": str(row.id), "size": row.size, "type": row.media_type})  # fmt: skip

    def listed(self, conference_id: uuid.UUID) -> list[FileView]:
        with self._sessions.begin() as s:
            rows = s.scalars(select(RoomFile).where(RoomFile.conference_id == conference_id)
                             .order_by(RoomFile.shared_at, RoomFile.id)).all()  # fmt: skip
            return [_view(row) for row in rows]

    def open(self, conference_id: uuid.UUID, file_id: uuid.UUID) -> tuple[FileView, Path]:
        """A file of this conference (NotFoundError for another's): its view and its bytes' path; audited."""
        with self._sessions.begin() as s:
            row = s.get(RoomFile, file_id)
            if row is None or row.conference_id != conference_id:
                raise NotFoundError("no such file in this conference")
            s.add(self._audit(AuditKind.FILE_DOWNLOADED, row))
            return _view(row), self.folder / row.stored_as

    def delete(self, conference_id: uuid.UUID, file_id: uuid.UUID) -> FileView:
        with self._sessions.begin() as s:
            row = s.get(RoomFile, file_id)
            if row is None or row.conference_id != conference_id:
                raise NotFoundError("no such file in this conference")
            view = _view(row)
            s.delete(row)
            s.add(self._audit(AuditKind.FILE_DELETED, row))
        (self.folder / row.stored_as).unlink(missing_ok=True)
        return view

    def sweep(self, kept: Iterable[str] | None = None) -> int:
        """Bytes whose row is gone (purged, or its conference deleted), and uploads left half-way: removed. Returns
        how many files went."""
        if not self.folder.exists():
            return 0
        if kept is None:
            with self._sessions.begin() as s:
                kept = set(s.scalars(select(RoomFile.stored_as)).all())
        keep = set(kept)
        gone = 0
        for path in self.folder.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink(missing_ok=True)
                gone += 1
        incoming = self.folder / "incoming"
        if incoming.is_dir():
            cutoff = self._clock().timestamp() - 3600  # an upload older than an hour is not going on
            for path in incoming.iterdir():
                with contextlib.suppress(OSError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        gone += 1
        return gone
