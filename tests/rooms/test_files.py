"""A room's files (rooms/files.py) on both backends: the type decided from the bytes (an executable named .pdf,
a document with macros, an unknown binary refused), the size and the conference's quota, the audit trail (ids,
sizes, types: never a name), another conference's file not found, retention and a deleted conference taking the
bytes with them, and a real clamd (Debian's) refusing the EICAR test file, and nothing shared while it is down."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from config import Settings
from rooms import ConferenceDraft, Rooms
from rooms.errors import NotFoundError
from rooms.files import Clamd, FileRefused, Files, ScanUnavailable, clean_name, sniff
from rooms.models import AuditKind
from rooms.retention import Retention
from tests.conftest import FakeClock
from tests.tools import require

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = (
    "Eicar-Test-Signature:0:0:58354f2150254041505b345c505a58353428505e2937434329377d2445494341522d5354414e44"
    "4152442d414e544956495255532d544553542d46494c452124482b482a"
)


def _zip(entries: dict[str, bytes], *, mimetype_first: bool = False) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries.items():
            z.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_STORED if mimetype_first else zipfile.ZIP_DEFLATED)
    return out.getvalue()


SAMPLES = {
    "report.pdf": (b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n", "application/pdf"),
    "scan.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png"),
    "photo.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64, "image/jpeg"),
    "photo.webp": (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64, "image/webp"),
    "notes.txt": ("Ordonnance : paracétamol 1 g, 3 fois par jour.\n".encode(), "text/plain"),
    "protocol.odt": (
        _zip({"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<x/>"}, mimetype_first=True),
        "application/vnd.oasis.opendocument.text",
    ),
    "letter.docx": (
        _zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>"}),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    "old.doc": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "application/vnd.ms-office"),
}
REFUSED = {
    "invoice.pdf": (b"MZ\x90\x00\x03" + b"\x00" * 200, "type"),  # a Windows program, renamed
    "tool.pdf": (b"\x7fELF\x02\x01\x01" + b"\x00" * 200, "type"),
    "run.txt": (b"#!/bin/sh\nrm -rf ~\n", "type"),
    "blob.bin": (bytes(range(256)) * 4, "type"),
    "macro.docm": (
        _zip({"[Content_Types].xml": b"<x/>", "word/document.xml": b"<x/>", "word/vbaProject.bin": b"\x00"}),
        "macros",
    ),
    "empty.txt": (b"", "empty"),
    "fake.odt": (_zip({"mimetype": b"application/x-msdownload"}, mimetype_first=True), "type"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_allowed_type_is_told_from_its_bytes(tmp_path: Path, name: str) -> None:
    data, kind = SAMPLES[name]
    path = tmp_path / "upload"
    path.write_bytes(data)
    assert sniff(path) == kind


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_anything_else_is_refused_whatever_its_name(tmp_path: Path, name: str) -> None:
    data, reason = REFUSED[name]
    path = tmp_path / "upload"
    path.write_bytes(data)
    with pytest.raises(FileRefused) as refused:
        sniff(path)
    assert refused.value.reason == reason


def test_a_name_is_cleaned_and_never_a_path() -> None:
    assert clean_name("C:\\Users\\x\\Ordonnance Dupont.pdf") == "Ordonnance Dupont.pdf"
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("a\x00b\nc.txt") == "abc.txt"
    assert clean_name("...") == "file"
    long = clean_name("x" * 300 + ".pdf")
    assert len(long) == 120
    assert long.endswith(".pdf")


def _files(rooms: Rooms, tmp_path: Path, clock: FakeClock, **limits: int) -> Files:
    return Files(rooms._sessions, clock, tmp_path / "files", max_bytes=limits.get("max_bytes", 1 << 20),
                 quota_bytes=limits.get("quota_bytes", 3 << 20))  # fmt: skip


def _upload(files: Files, data: bytes) -> Path:
    path = files.incoming()
    path.write_bytes(data)
    return path


def test_a_file_is_kept_by_a_random_name_listed_opened_and_deleted_and_audited_without_its_name(
    rooms: Rooms, tmp_path: Path, clock: FakeClock
) -> None:
    files = _files(rooms, tmp_path, clock)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation"))
    other = rooms.create_conference(ConferenceDraft(name="Autre"))
    data = SAMPLES["report.pdf"][0]
    view = files.add(conference.id, _upload(files, data), "Ordonnance Dupont.pdf", "Dr Martin", "k1")
    assert (view.name, view.media_type, view.size, view.previewed) == ("Ordonnance Dupont.pdf", "application/pdf",
                                                                       len(data), True)  # fmt: skip
    stored = [p for p in (tmp_path / "files").iterdir() if p.is_file()]
    assert len(stored) == 1
    assert "Dupont" not in stored[0].name
    assert stored[0].read_bytes() == data
    assert list((tmp_path / "files" / "incoming").iterdir()) == [], "the upload was left behind"
    assert [f.id for f in files.listed(conference.id)] == [view.id]
    assert files.listed(other.id) == []
    opened, path = files.open(conference.id, view.id)
    assert path.read_bytes() == data
    assert opened.sha256 == view.sha256
    with pytest.raises(NotFoundError):
        files.open(other.id, view.id)  # another conference's ticket does not reach it
    with pytest.raises(NotFoundError):
        files.delete(other.id, view.id)
    files.delete(conference.id, view.id)
    assert files.listed(conference.id) == []
    assert not path.exists()
    events = rooms.audit_events(conference_id=conference.id)
    kinds = [e.kind for e in events]
    for kind in (AuditKind.FILE_UPLOADED, AuditKind.FILE_DOWNLOADED, AuditKind.FILE_DELETED):
        assert kind in kinds
    trail = repr([e.detail for e in events])
    assert "Dupont" not in trail
    assert "Martin" not in trail
    assert str(view.id) in trail


def test_too_large_over_the_quota_or_of_a_wrong_type_is_refused_kept_nowhere_and_audited(
    rooms: Rooms, tmp_path: Path, clock: FakeClock
) -> None:
    files = _files(rooms, tmp_path, clock, max_bytes=1000, quota_bytes=2500)
    conference = rooms.create_conference(ConferenceDraft(name="Consultation"))
    text = b"a" * 900 + b"\n"
    for _ in range(2):
        files.add(conference.id, _upload(files, text), "notes.txt", "Anne", "k2")
    reasons = []
    for data in (b"b" * 1001, text, REFUSED["invoice.pdf"][0]):
        with pytest.raises(FileRefused) as refused:
            files.add(conference.id, _upload(files, data), "x.pdf", "Anne", "k2")
        reasons.append(refused.value.reason)
    assert reasons == ["size", "quota", "type"]
    assert len(files.listed(conference.id)) == 2
    assert len([p for p in (tmp_path / "files").iterdir() if p.is_file()]) == 2
    assert list((tmp_path / "files" / "incoming").iterdir()) == []
    refusals = [e.detail for e in rooms.audit_events(conference_id=conference.id) if e.kind is AuditKind.FILE_REFUSED]
    assert sorted(r["reason"] for r in refusals) == ["quota", "size", "type"]


def test_retention_and_a_deleted_conference_take_the_files_bytes_with_them(
    rooms: Rooms, settings: Settings, tmp_path: Path, clock: FakeClock
) -> None:
    import dataclasses

    folder = tmp_path / "files"
    settings = dataclasses.replace(settings, files=dataclasses.replace(settings.files, folder=folder))
    files = _files(rooms, tmp_path, clock)
    kept, gone = (rooms.create_conference(ConferenceDraft(name=n)) for n in ("Formation", "Consultation"))
    old = files.add(kept.id, _upload(files, b"old\n"), "old.txt", "Anne", "k")
    clock.advance(timedelta(days=settings.retention.files_days, hours=1))
    new = files.add(kept.id, _upload(files, b"new\n"), "new.txt", "Anne", "k")
    files.add(gone.id, _upload(files, b"other\n"), "other.txt", "Anne", "k")
    rooms.delete_conference(gone.id)
    counts = Retention(rooms._sessions, settings, clock).purge()
    assert counts["room_files"] == 1
    assert counts["room_file_bytes"] == 2  # the purged one's and the deleted conference's
    assert [f.id for f in files.listed(kept.id)] == [new.id]
    left = {p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert left == {b"new\n"}
    assert old.id not in {f.id for f in files.listed(kept.id)}


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Debian's clamd with a signature database of one entry (EICAR's), on a socket of its own."""
    binary = require("clamd")
    folder = tmp_path_factory.mktemp("clamd")
    (folder / "db").mkdir()
    (folder / "db" / "test.ndb").write_text(EICAR_SIGNATURE + "\n")
    sock = folder / "clamd.sock"
    (folder / "clamd.conf").write_text(
        f"DatabaseDirectory {folder / 'db'}\nLocalSocket {sock}\nForeground yes\nLogFile {folder / 'clamd.log'}\n"
        f"PidFile {folder / 'clamd.pid'}\nTemporaryDirectory {folder}\nStreamMaxLength 30M\n"
    )
    process = subprocess.Popen([binary, "-c", str(folder / "clamd.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "clamd.log").read_text() if (folder / "clamd.log").exists() else ""
                raise RuntimeError(f"clamd did not start: {log[-2000:]}")
            time.sleep(0.1)
        yield sock
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.e2e
def test_a_real_clamd_refuses_the_eicar_file_and_while_it_is_down_nothing_is_shared(
    rooms: Rooms, tmp_path: Path, clock: FakeClock, clamd: Path
) -> None:
    conference = rooms.create_conference(ConferenceDraft(name="Consultation"))
    files = Files(rooms._sessions, clock, tmp_path / "files", max_bytes=1 << 20, quota_bytes=1 << 22,
                  scanner=Clamd(clamd))  # fmt: skip
    assert files.add(conference.id, _upload(files, b"compte rendu\n"), "cr.txt", "Dr Martin", "k").size == 13
    with pytest.raises(FileRefused) as refused:
        files.add(conference.id, _upload(files, EICAR), "eicar.txt", "Dr Martin", "k")  # text, by its bytes
    assert refused.value.reason == "virus"
    assert [f.name for f in files.listed(conference.id)] == ["cr.txt"]
    stored = [p.read_bytes() for p in (tmp_path / "files").iterdir() if p.is_file()]
    assert stored == [b"compte rendu\n"], "the infected file was kept"
    # clamd configured but not answering: refused, not let through.
    down = Files(rooms._sessions, clock, tmp_path / "files", max_bytes=1 << 20, quota_bytes=1 << 22,
                 scanner=Clamd(tmp_path / "no-clamd.sock"))  # fmt: skip
    with pytest.raises(ScanUnavailable):
        down.add(conference.id, _upload(down, b"lettre\n"), "lettre.txt", "Dr Martin", "k")
    assert [f.name for f in files.listed(conference.id)] == ["cr.txt"]
    assert list((tmp_path / "files" / "incoming").iterdir()) == []
    assert uuid.UUID(str(files.listed(conference.id)[0].id))
