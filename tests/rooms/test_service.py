from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from config import Settings
from rooms import (
    AuditKind,
    ConferenceDraft,
    ConferenceKind,
    ConflictError,
    DeliveryState,
    DialInOutcome,
    InviteeKind,
    NotFoundError,
    Rooms,
    ValidationError,
    codes,
)
from rooms.db import session_factory
from rooms.models import Base, DialCode
from tests.conftest import FakeClock


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()
        }


@pytest.fixture
def alice(rooms: Rooms) -> str:
    rooms.create_user("alice", "Dr Alice Martin", email="alice@example.org", phone="06 12 34 56 78")
    return "alice"


def draft(**overrides: object) -> ConferenceDraft:
    values: dict[str, object] = {"name": "Consultation", "start": "2026-12-01T09:00", "end": "2026-12-01T09:30"}
    values.update(overrides)
    return ConferenceDraft(**values)  # type: ignore[arg-type]


# -- users -----------------------------------------------------------------------------------------------------------


def test_service_user_created_normalised(rooms: Rooms) -> None:
    u = rooms.create_user("  Bob.Durand ", "Bob Durand", email="Bob@Example.ORG", phone="+32 470 12 34 56")
    assert u.username == "bob.durand"
    assert u.email == "Bob@example.org"
    assert u.phone_e164 == "+32470123456"
    assert u.timezone == "Europe/Paris"
    assert rooms.get_user("BOB.DURAND").id == u.id


def test_service_duplicate_username_refused(rooms: Rooms, engine: Engine, alice: str) -> None:
    before = table_counts(engine)
    with pytest.raises(ConflictError, match="'alice' is already taken"):
        rooms.create_user("Alice", "Another Alice")
    assert table_counts(engine) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"username": "a"}, "^username: 2 to 64 characters"),
        ({"username": "al ice"}, "^username: 2 to 64 characters"),
        ({"display_name": "  "}, "^display_name: must not be empty"),
        ({"display_name": "Bob\x00"}, "^display_name: contains control characters"),
        ({"email": "bob@"}, "^email: expected an email address"),
        ({"phone": "12"}, "^phone: "),
        ({"phone": "01 23"}, "^phone: not a valid phone number"),
        ({"language": "de"}, "^language: expected fr or en"),
        ({"timezone": "Paris"}, "^timezone: unknown timezone 'Paris'"),
    ],
)
def test_service_bad_user_input_writes_nothing(
    rooms: Rooms, engine: Engine, kwargs: dict[str, str], message: str
) -> None:
    values = {"username": "bob", "display_name": "Bob"} | kwargs
    before = table_counts(engine)
    with pytest.raises(ValidationError, match=message):
        rooms.create_user(values.pop("username"), values.pop("display_name"), **values)
    assert table_counts(engine) == before


# -- conferences -----------------------------------------------------------------------------------------------------


def test_service_conference_created(rooms: Rooms, alice: str) -> None:
    c = rooms.create_conference(draft(owner=alice, entry_code="0042", lobby_mode="always", message="Bonjour"))
    assert c.kind is ConferenceKind.SCHEDULED
    assert codes.is_well_formed(c.code)
    assert c.entry_code == "0042"
    assert c.owner_username == "alice"
    assert c.starts_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert c.window.opens_at == datetime(2026, 12, 1, 7, 50, tzinfo=UTC)
    assert c.window.closes_at == datetime(2026, 12, 1, 8, 45, tzinfo=UTC)
    assert c.join_url.startswith("http://localhost:8080/c/")
    assert "0042" not in repr(c)
    assert c.join_url not in repr(c)
    again = rooms.get_conference(str(c.id))
    assert again == c


def test_service_conference_open_and_random_entry_code(rooms: Rooms) -> None:
    c = rooms.create_conference(ConferenceDraft(name="Staff", entry_code="random"))
    assert c.starts_at is None
    assert c.window.opens_at is None
    assert c.entry_code is not None
    assert len(c.entry_code) == 6
    assert c.entry_code.isdigit()


def test_service_codes_unique_across_conferences(rooms: Rooms) -> None:
    made = [rooms.create_conference(ConferenceDraft(name=f"c{i}")) for i in range(30)]
    assert len({c.code for c in made}) == 30
    assert len({c.join_url for c in made}) == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": " "}, "^name: must not be empty"),
        ({"name": "x" * 201}, "^name: at most 200 characters"),
        ({"start": "2026-12-01T10:00", "end": "2026-12-01T09:00"}, "^end: the end must come after the start"),
        ({"start": "2026-11-01T10:00", "end": "2026-11-01T11:00"}, "^end: the end is already past"),
        ({"end": None}, "^start: give both a start and an end"),
        ({"start": "demain 9h"}, "^start: expected an ISO 8601"),
        ({"start": "2026-03-29T02:15", "end": "2026-03-29T04:00"}, "^start: .* does not exist in Europe/Paris"),
        ({"timezone": "Europe/Lutece"}, "^timezone: unknown timezone"),
        ({"entry_code": "12"}, "^entry_code: expected 4 to 8 digits, got 2"),
        ({"entry_code": "123456789"}, "^entry_code: expected 4 to 8 digits, got 9"),
        ({"entry_code": "12ab"}, "^entry_code: expected 4 to 8 digits"),
        ({"lobby_mode": "sometimes"}, "^lobby: expected off, until-host or always"),
        ({"message": "x" * 2001}, "^message: at most 2000 characters"),
    ],
)
def test_service_bad_conference_writes_nothing(
    rooms: Rooms, engine: Engine, overrides: dict[str, object], message: str
) -> None:
    before = table_counts(engine)
    with pytest.raises(ValidationError, match=message):
        rooms.create_conference(draft(**overrides))
    assert table_counts(engine) == before


def test_service_unknown_owner_writes_nothing(rooms: Rooms, engine: Engine) -> None:
    before = table_counts(engine)
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        rooms.create_conference(draft(owner="nobody"))
    assert table_counts(engine) == before


def test_service_entry_code_required_by_policy(database_url: str, engine: Engine, clock: FakeClock) -> None:
    from config import load_settings

    strict = load_settings(
        environ={"PASSERELLE_DATABASE__URL": database_url, "PASSERELLE_CODES__ENTRY_CODE_REQUIRED": "true"}
    )
    rooms = Rooms(strict, session_factory(engine), clock=clock)
    with pytest.raises(ValidationError, match=r"^entry_code: this installation requires an entry code"):
        rooms.create_conference(draft())
    assert rooms.create_conference(draft(entry_code="123456")).entry_code == "123456"


def test_service_list_hides_ended(rooms: Rooms, clock: FakeClock) -> None:
    soon = rooms.create_conference(draft(name="soon", start="2026-11-28T11:00", end="2026-11-28T12:00"))
    later = rooms.create_conference(draft(name="later", start="2026-12-02T11:00", end="2026-12-02T12:00"))
    open_room = rooms.create_conference(ConferenceDraft(name="open"))
    assert [c.id for c in rooms.list_conferences()] == [soon.id, later.id, open_room.id]
    clock.advance(timedelta(hours=3, minutes=15))  # 12:15 Paris: soon ended, grace over
    assert [c.id for c in rooms.list_conferences()] == [later.id, open_room.id]
    assert [c.id for c in rooms.list_conferences(include_ended=True)] == [soon.id, later.id, open_room.id]


def test_service_delete_rests_code(rooms: Rooms, engine: Engine, clock: FakeClock) -> None:
    c = rooms.create_conference(ConferenceDraft(name="gone"))
    rooms.add_invitee(c.id, "email", "patient@example.org")
    rooms.delete_conference(c.id)
    with pytest.raises(NotFoundError):
        rooms.get_conference(c.id)
    with engine.connect() as conn:
        row = conn.execute(select(DialCode.conference_id, DialCode.reserved_until).where(DialCode.code == c.code)).one()
    assert row.conference_id is None
    assert row.reserved_until == clock.now + timedelta(days=365)
    assert table_counts(engine)["invitees"] == 0
    with pytest.raises(NotFoundError):
        rooms.delete_conference(c.id)
    with pytest.raises(ValidationError, match=r"^conference: expected a conference id"):
        rooms.delete_conference("not-a-uuid")


def test_service_code_not_reissued_within_rest(settings: Settings, engine: Engine, clock: FakeClock) -> None:
    """A deleted conference's code stays out of circulation for a year, then can be drawn again."""

    body = "31415926"
    draws = iter([body, "27182818", body])
    rooms = Rooms(settings, session_factory(engine), clock=clock, draw_code=lambda: next(draws))
    first = rooms.create_conference(ConferenceDraft(name="first"))
    rooms.delete_conference(first.id)
    second = rooms.create_conference(ConferenceDraft(name="second"))
    assert second.code != first.code  # drew the resting code, skipped it
    clock.advance(timedelta(days=366))
    third = rooms.create_conference(ConferenceDraft(name="third"))
    assert third.code == first.code


def test_service_scheduled_code_rests_a_year_after_close(settings: Settings, engine: Engine, clock: FakeClock) -> None:

    body = "16180339"
    draws = iter([body, body, "14142135", body])
    rooms = Rooms(settings, session_factory(engine), clock=clock, draw_code=lambda: next(draws))
    past = rooms.create_conference(draft(start="2026-11-28T11:00", end="2026-11-28T12:00"))
    clock.advance(timedelta(days=365))  # conference over for almost a year, not quite
    assert rooms.create_conference(ConferenceDraft(name="x")).code != past.code
    clock.advance(timedelta(days=1))
    again = rooms.create_conference(ConferenceDraft(name="y"))
    assert again.code == past.code
    assert rooms.resolve_dial_in(again.code).conference == again


# -- personal rooms --------------------------------------------------------------------------------------------------


def test_service_personal_room_permanent(rooms: Rooms, engine: Engine, alice: str, clock: FakeClock) -> None:
    room = rooms.personal_room(alice)
    assert room.kind is ConferenceKind.PERSONAL
    assert room.name == "Salle personnelle · Dr Alice Martin"
    assert room.window.closes_at is None
    clock.advance(timedelta(days=800))
    assert rooms.personal_room("ALICE") == room
    assert table_counts(engine)["conferences"] == 1
    assert rooms.resolve_dial_in(room.code).admitted


def test_service_personal_room_regenerate(rooms: Rooms, engine: Engine, alice: str, clock: FakeClock) -> None:
    room = rooms.personal_room(alice)
    fresh = rooms.regenerate_personal_code(alice)
    assert fresh.id == room.id
    assert fresh.join_url == room.join_url
    assert fresh.code != room.code
    assert not rooms.resolve_dial_in(room.code).admitted
    assert rooms.resolve_dial_in(fresh.code).admitted
    with engine.connect() as conn:
        rest = conn.execute(select(DialCode.reserved_until).where(DialCode.code == room.code)).scalar_one()
    assert rest == clock.now + timedelta(days=365)
    assert AuditKind.CODE_REGENERATED in [e.kind for e in rooms.audit_events(conference_id=room.id)]


def test_service_personal_room_unknown_user(rooms: Rooms) -> None:
    with pytest.raises(NotFoundError):
        rooms.personal_room("nobody")


# -- invitees --------------------------------------------------------------------------------------------------------


def test_service_invitees_each_kind(rooms: Rooms, alice: str) -> None:
    c = rooms.create_conference(draft(owner=alice))
    rooms.create_user("bob", "Bob", language="en")
    by_user = rooms.add_invitee(c.id, InviteeKind.USER, "bob")
    by_email = rooms.add_invitee(c.id, "email", "Patient@Example.org", language="en", send_now=False)
    by_sms = rooms.add_invitee(c.id, "phone", "07 98 76 54 32")
    assert by_user.address == "bob"
    assert by_user.language.value == "en"
    assert by_email.address == "Patient@example.org"
    assert by_email.delivery_state is DeliveryState.NOT_SENT
    assert by_sms.address == "+33798765432"
    assert by_sms.masked_address == "+33 7 •• •• •• 32"
    assert by_sms.delivery_state is DeliveryState.QUEUED
    urls = {i.join_url for i in (by_user, by_email, by_sms)}
    assert len(urls) == 3
    assert all("/i/" in u for u in urls)
    assert [i.id for i in rooms.list_invitees(c.id)] == [by_user.id, by_email.id, by_sms.id]
    assert "+33798765432" not in repr(by_sms)


@pytest.mark.parametrize(
    ("kind", "address", "error", "message"),
    [
        ("email", "not-an-address", ValidationError, "^email: expected an email address"),
        ("phone", "04 91 00 00 00", ValidationError, "^phone: not a mobile number"),
        ("phone", "06 12", ValidationError, "^phone: not a valid phone number"),
        ("user", "nobody", NotFoundError, "no user named 'nobody'"),
        ("fax", "x", ValidationError, "^kind: expected user, email or phone"),
    ],
)
def test_service_bad_invitee_writes_nothing(
    rooms: Rooms, engine: Engine, kind: str, address: str, error: type[Exception], message: str
) -> None:
    c = rooms.create_conference(draft())
    before = table_counts(engine)
    with pytest.raises(error, match=message):
        rooms.add_invitee(c.id, kind, address)
    assert table_counts(engine) == before


def test_service_invitee_twice_refused(rooms: Rooms) -> None:
    c = rooms.create_conference(draft())
    rooms.add_invitee(c.id, "phone", "+33612345678")
    with pytest.raises(ConflictError, match="already invited"):
        rooms.add_invitee(c.id, "phone", "06 12 34 56 78")
    with pytest.raises(NotFoundError):
        rooms.add_invitee(uuid.uuid4(), "phone", "06 12 34 56 78")


def test_service_update_keeps_codes_and_links_and_counts_the_sequence(rooms: Rooms, engine: Engine, alice: str,
                                                                      clock: FakeClock) -> None:  # fmt: skip
    c = rooms.create_conference(draft(owner=alice, entry_code="4821"))
    later = draft(name="Consultation décalée", start="2026-12-01T10:00", end="2026-12-01T11:00", lobby_mode="always")
    changed = rooms.update_conference(c.id, later, actor=alice)
    assert (changed.code, changed.join_url, changed.sequence) == (c.code, c.join_url, 1)
    assert changed.entry_code is None, "a draft without an entry code removes it"
    assert changed.ends_at - changed.starts_at == timedelta(hours=1)  # type: ignore[operator]
    assert rooms.resolve_dial_in(c.code, now=changed.starts_at).outcome is DialInOutcome.ADMITTED
    clock.advance(timedelta(days=3))  # the conference is over: its unchanged past schedule may stay
    again = rooms.update_conference(c.id, draft(name="Compte rendu", start="2026-12-01T10:00",
                                                end="2026-12-01T11:00"))  # fmt: skip
    assert again.sequence == 2
    before = table_counts(engine)
    with pytest.raises(ValidationError, match=r"already past"):  # a new schedule in the past is refused
        rooms.update_conference(c.id, draft(start="2026-11-30T10:00", end="2026-11-30T11:00"))
    with pytest.raises(ValidationError, match="personal room"):
        rooms.update_conference(rooms.personal_room(alice).id, draft())
    counts = table_counts(engine)
    assert {k: v for k, v in counts.items() if k not in ("conferences", "dial_codes", "audit_events")} == {
        k: v for k, v in before.items() if k not in ("conferences", "dial_codes", "audit_events")
    }
    assert rooms.get_conference(c.id).name == "Compte rendu"


def test_service_conference_and_invitees_are_made_together_or_not_at_all(rooms: Rooms, engine: Engine,
                                                                         alice: str) -> None:  # fmt: skip
    before = table_counts(engine)
    with pytest.raises(NotFoundError):
        rooms.create_conference(draft(), [("email", "anne@example.org"), ("user", "nobody")])
    assert table_counts(engine) == before, "no conference without its participants"
    c = rooms.create_conference(draft(), [("email", "anne@example.org"), ("user", alice), ("phone", "06 12 34 56 78")])
    assert sorted(i.kind.value for i in rooms.list_invitees(c.id)) == ["email", "phone", "user"]
    added = rooms.add_invitees(c.id, [("email", "ANNE@example.org".lower()), ("email", "b@example.org")])
    assert [i.address for i in added] == ["b@example.org"], "those already invited are left as they are"
    before = table_counts(engine)
    with pytest.raises(ValidationError):
        rooms.add_invitees(c.id, [("email", "c@example.org"), ("phone", "04 91 00 00 00")])
    assert table_counts(engine) == before, "all or none"


def test_service_audit_trail_holds_nothing_personal(rooms: Rooms, alice: str) -> None:
    c = rooms.create_conference(draft(owner=alice, entry_code="98765"))
    rooms.add_invitee(c.id, "phone", "06 12 34 56 78")
    rooms.add_invitee(c.id, "email", "patient@example.org")
    rooms.resolve_dial_in(c.code, "11111", now=c.starts_at)
    text = repr([(e.kind, e.detail) for e in rooms.audit_events()])
    for secret in ("98765", "11111", c.code, "612345678", "patient@", "Alice"):
        assert secret not in text
    kinds = [e.kind for e in rooms.audit_events()]
    assert AuditKind.CONFERENCE_CREATED in kinds
    assert AuditKind.INVITEE_ADDED in kinds


def test_service_links_lead_to_their_conference_and_nothing_else(rooms: Rooms) -> None:
    conference = rooms.create_conference(draft(entry_code="4821"))
    invitee = rooms.add_invitee(conference.id, "email", "Patient@Example.org", send_now=False)
    own = conference.join_url.rsplit("/", 1)[1]
    personal = invitee.join_url.rsplit("/", 1)[1]
    found, who = rooms.by_link(own)
    assert (found.id, who) == (conference.id, None)
    found, who = rooms.by_link(personal)
    assert found.id == conference.id
    assert who is not None
    assert who.id == invitee.id
    for bad in ("", "x" * 100, own[:-1] + ("A" if own[-1] != "A" else "B"), "../../etc/passwd", "a" * 32):
        with pytest.raises(NotFoundError, match="no such link"):
            rooms.by_link(bad)
