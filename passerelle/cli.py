"""The ``passerelle`` command.

Exit status: 0 done; 2 bad arguments, bad settings or refused input, with one line on stderr and nothing written;
1 an unexpected failure. ``conference create --json`` prints a stable object that other tools script (see README).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from config import PasserelleError, Settings, load_settings
from passerelle import logs
from rooms import ConferenceDraft, ConferenceView, Rooms, UserView
from rooms.schedule import local_iso

log = logging.getLogger("passerelle")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage stays behind ``--help``)."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix("passerelle").strip()
        self.exit(2, f"passerelle: error: {where + ': ' if where else ''}{message}\n")


def _parser() -> argparse.ArgumentParser:
    root = _Parser(prog="passerelle", description="Telephony-first web conference bridge.")
    root.add_argument("--config", type=Path, metavar="FILE", help="TOML file of settings (see config/default.toml)")
    root.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    root.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="json: one object a line (time, level, logger, message, exception), for a log collector",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    commands.add_parser("serve", help="run the bridge and the web site (upgrades an embedded database first)")
    purge = commands.add_parser("purge", help="delete the personal data past its retention ([retention])")
    purge.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")

    lobby = commands.add_parser("lobby", help="callers waiting for a host (asks the running service)")
    lobby_actions = lobby.add_subparsers(dest="action", required=True)
    lobby_actions.add_parser("list", help="who waits, in which conference")
    for verb in ("admit", "deny"):
        decide = lobby_actions.add_parser(verb, help=f"{verb} a waiting caller")
        decide.add_argument("leg", help="the caller's leg id, from `passerelle lobby list`")

    drain = commands.add_parser("drain", help="refuse new calls and wait for the calls in progress to end (before a "
                                "stop: config/systemd/passerelle.service)")  # fmt: skip
    drain.add_argument("--wait-s", type=int, default=900, metavar="S", help="wait at most this long (900)")

    dial = commands.add_parser("call", help="call a phone number into a conference (asks the running service)")
    dial.add_argument("--conference", required=True, metavar="ID")
    dial.add_argument("--number", required=True, help="national or +E.164; of a country in trunk.allowed_countries")
    dial.add_argument("--digits", default="", help="keys sent once answered (RFC 4733): a switchboard's extension")

    dtmf = commands.add_parser("dtmf", help="keypad tones in WAV files").add_subparsers(dest="action", required=True)
    detect = dtmf.add_parser("detect", help="print each digit heard, with its start and end in ms")
    detect.add_argument("file", type=Path, metavar="FILE.wav")
    detect.add_argument("--json", action="store_true")
    gen = dtmf.add_parser("generate", help="write digits as DTMF tones")
    gen.add_argument("digits", help='e.g. "123456789#"')
    gen.add_argument("out", type=Path, metavar="OUT.wav")
    gen.add_argument("--rate", type=int, default=8000, choices=[8000, 16000, 48000])
    gen.add_argument("--on-ms", type=float, default=100.0)
    gen.add_argument("--off-ms", type=float, default=100.0)
    gen.add_argument("--level-dbm0", type=float, default=-10.0, help="per tone")
    gen.add_argument("--twist-db", type=float, default=0.0, help="low tone minus high tone")

    bench = commands.add_parser("bench", help="run a benchmark; prints JSON (see bench/RESULTS.md)")
    bench.add_argument("name", choices=sorted(BENCHMARKS))
    bench.add_argument("options", nargs=argparse.REMAINDER, help="options of that benchmark")

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    db.add_parser("upgrade", help="bring the schema to this version (run once per release on PostgreSQL)")

    cfg = commands.add_parser("config", help="settings").add_subparsers(dest="action", required=True)
    cfg.add_parser("show", help="print the settings in force, secrets masked")

    user = commands.add_parser("user", help="professionals").add_subparsers(dest="action", required=True)
    create_user = user.add_parser("create", help="add a professional")
    create_user.add_argument("--username", required=True)
    create_user.add_argument("--name", required=True, help="display name")
    create_user.add_argument("--email")
    create_user.add_argument("--phone", help="mobile number, national or +E.164")
    create_user.add_argument("--language", choices=["fr", "en"])
    create_user.add_argument("--timezone", help="IANA name, e.g. Europe/Paris")
    create_user.add_argument("--json", action="store_true")
    password = user.add_parser("password", help="set a local account's password, read from standard input")
    password.add_argument("username")
    list_users = user.add_parser("list", help="list professionals")
    list_users.add_argument("--json", action="store_true")

    conf = commands.add_parser("conference", help="conferences").add_subparsers(dest="action", required=True)
    create = conf.add_parser("create", help="schedule a conference, or open one without schedule")
    create.add_argument("--name", required=True)
    create.add_argument("--entry-code", metavar="DIGITS|random", help="second code callers must type")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--start", metavar="ISO", help="e.g. 2026-12-01T09:30 (in --timezone) or with an offset")
    when.add_argument("--open", action="store_true", help="no schedule: joinable at any time (the default)")
    create.add_argument("--end", metavar="ISO")
    create.add_argument("--timezone", help="IANA name; default locale.timezone")
    create.add_argument("--lobby", choices=["off", "until-host", "always"])
    create.add_argument("--owner", metavar="USERNAME")
    create.add_argument("--message", default="")
    create.add_argument("--json", action="store_true")
    listing = conf.add_parser("list", help="upcoming and ongoing conferences")
    listing.add_argument("--all", action="store_true", help="include ended ones")
    listing.add_argument("--owner", metavar="USERNAME")
    listing.add_argument("--json", action="store_true")
    show = conf.add_parser("show", help="one conference")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    delete = conf.add_parser("delete", help="delete a conference; its code rests before reuse")
    delete.add_argument("id")
    personal = conf.add_parser("personal", help="a professional's permanent room (created on first use)")
    personal.add_argument("username")
    personal.add_argument("--regenerate-code", action="store_true", help="give the room a new dial-in code")
    personal.add_argument("--json", action="store_true")
    return root


def host_url(c: ConferenceView, settings: Settings) -> str | None:
    """The organiser's link (lobby panel): signed with the service key, so only with security.secret_key set."""
    if not settings.security.secret_key.reveal():
        return None
    from web.app import service_key
    from web.tickets import host_token

    return f"{settings.http.public_base_url}/h/{host_token(service_key(settings), c.id)}"


def conference_json(c: ConferenceView, settings: Settings) -> dict[str, Any]:
    """The stable object of ``conference create --json`` (documented in the README)."""
    return {
        "id": str(c.id),
        "code": c.code,
        "entry_code": c.entry_code,
        "join_url": c.join_url,
        "host_url": host_url(c, settings),
        "dial_in": [{"number_e164": n.e164, "display": n.international} for n in settings.dial_in.numbers],
        "opens_at": local_iso(c.window.opens_at, c.timezone),
        "closes_at": local_iso(c.window.closes_at, c.timezone),
    }


def _conference_details(c: ConferenceView, settings: Settings) -> dict[str, Any]:
    return conference_json(c, settings) | {
        "name": c.name,
        "kind": str(c.kind),
        "owner": c.owner_username,
        "starts_at": local_iso(c.starts_at, c.timezone),
        "ends_at": local_iso(c.ends_at, c.timezone),
        "timezone": c.timezone,
        "lobby": str(c.lobby_mode),
        "message": c.message,
    }


def _print_conference(c: ConferenceView, settings: Settings) -> None:
    d = _conference_details(c, settings)
    when = f"{d['starts_at']} → {d['ends_at']} ({c.timezone})" if c.starts_at else "open, no schedule"
    lines = [
        f"{c.name}",
        f"  id          {c.id}",
        f"  kind        {c.kind}",
        f"  when        {when}",
        f"  joinable    {d['opens_at'] or 'always'} → {d['closes_at'] or ''}".rstrip(" →"),
        f"  code        {c.code_display} #",
        f"  entry code  {c.entry_code or '(none)'}",
        f"  lobby       {c.lobby_mode}",
        f"  link        {c.join_url}",
        f"  host link   {host_url(c, settings) or '(set security.secret_key to have one)'}",
    ]
    lines += [f"  dial in     {n.international}" for n in settings.dial_in.numbers]
    print("\n".join(lines))


def _user_json(u: UserView) -> dict[str, Any]:
    return {
        "id": str(u.id),
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "phone": u.phone_e164,
        "language": str(u.language),
        "timezone": u.timezone,
    }


def _emit(as_json: bool, data: Any, human: Callable[[], object]) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        human()


_BENCH_NAMES = ("board", "cluster", "dtmf", "hostile", "latency", "mixer", "room", "rooms", "sip", "site", "talkoff",
                "video", "web", "webrtc")  # fmt: skip
BENCHMARKS = {name: f"bench.{name}" for name in _BENCH_NAMES}


def _drain(settings: Settings, wait_s: int) -> int:
    """New calls refused now; back when no phone call is left, or after ``wait_s`` (the stop goes on either way)."""
    from passerelle import control

    control.call(settings.control.socket, "POST", "/drain")
    deadline, calls = time.monotonic() + wait_s, None
    while True:
        calls = len(control.call(settings.control.socket, "GET", "/stats").get("lines", []))
        if calls == 0 or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    print(f"drained: {calls} call(s) still in progress after {wait_s} s" if calls else "drained: no call in progress")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "call":
        from passerelle import control

        body = {"conference": args.conference, "number": args.number, "digits": args.digits}
        wait_s = settings.trunk.answer_timeout_s + 15
        print(control.show(control.call(settings.control.socket, "POST", "/calls", body, timeout_s=wait_s)))
        return 0
    if args.command == "drain":
        return _drain(settings, args.wait_s)
    if args.command == "lobby":
        from passerelle import control

        socket_path = settings.control.socket
        if args.action == "list":
            print(control.show(control.call(socket_path, "GET", "/lobby")))
        else:
            print(control.show(control.call(socket_path, "POST", f"/lobby/{args.leg}/{args.action}")))
        return 0
    if args.command == "dtmf":
        from dtmf.tones import ToneSpec
        from passerelle.dtmf_cli import run_detect, run_generate

        if args.action == "detect":
            return run_detect(args.file, args.json)
        spec = ToneSpec(on_ms=args.on_ms, off_ms=args.off_ms, level_dbm0=args.level_dbm0, twist_db=args.twist_db)
        return run_generate(args.digits, args.out, args.rate, spec)
    if args.command == "bench":
        import importlib

        bench_main: Callable[[list[str]], int] = importlib.import_module(BENCHMARKS[args.name]).main
        return bench_main(args.options)
    if args.command == "conference" and args.action == "create" and (args.start is None) != (args.end is None):
        raise _Usage("--start and --end go together (or give --open, the default)")
    if args.command == "config":
        print(json.dumps(settings.describe(), ensure_ascii=False, indent=2))
        return 0
    if args.command == "serve":
        from passerelle.serve import serve

        return serve(settings)
    if args.command == "db":
        from rooms import db
        from rooms.store import head_revision

        engine = db.make_engine(settings.database.url.reveal())
        try:
            db.upgrade(engine)
            print(f"database schema at {head_revision()}")
        finally:
            engine.dispose()
        return 0

    from rooms.store import open_rooms

    rooms, engine = open_rooms(settings)
    try:
        return _run_rooms(args, settings, rooms)
    finally:
        engine.dispose()


def _run_rooms(args: argparse.Namespace, settings: Settings, rooms: Rooms) -> int:
    if args.command == "purge":
        from rooms.retention import Retention

        counts = Retention(rooms.sessions, settings, rooms.now).purge(dry_run=args.dry_run)
        print(json.dumps({"dry_run": args.dry_run, **counts}))
        return 0
    if args.command == "user" and args.action == "create":
        u = rooms.create_user(
            args.username, args.name, email=args.email, phone=args.phone, language=args.language,
            timezone=args.timezone,
        )  # fmt: skip
        _emit(args.json, _user_json(u), lambda: print(f"user {u.username} created ({u.id})"))
    elif args.command == "user" and args.action == "password":
        line = sys.stdin.readline().rstrip("\r\n")  # one line: never on the command line, where ps shows it
        rooms.set_password(args.username, line)
        print(f"password of {args.username} set")
    elif args.command == "user":
        users = rooms.list_users()
        _emit(args.json, [_user_json(u) for u in users], lambda: [print(f"{u.username}\t{u.id}") for u in users])
    elif args.action == "create":
        draft = ConferenceDraft(
            name=args.name, owner=args.owner, entry_code=args.entry_code, start=args.start, end=args.end,
            timezone=args.timezone, lobby_mode=args.lobby, message=args.message,
        )  # fmt: skip
        c = rooms.create_conference(draft)
        _emit(args.json, conference_json(c, settings), lambda: _print_conference(c, settings))
    elif args.action == "list":
        found = rooms.list_conferences(include_ended=args.all, owner=args.owner)
        _emit(
            args.json,
            [_conference_details(c, settings) for c in found],
            lambda: [print(f"{c.id}  {c.code_display}  {local_iso(c.starts_at, c.timezone) or 'open':25}  {c.name}")
                     for c in found],
        )  # fmt: skip
    elif args.action == "show":
        c = rooms.get_conference(args.id)
        _emit(args.json, _conference_details(c, settings), lambda: _print_conference(c, settings))
    elif args.action == "delete":
        rooms.delete_conference(args.id)
        print(f"conference {args.id} deleted")
    elif args.action == "personal":
        room = (
            rooms.regenerate_personal_code(args.username)
            if args.regenerate_code
            else rooms.personal_room(args.username)
        )
        _emit(args.json, _conference_details(room, settings), lambda: _print_conference(room, settings))
    return 0


class _Usage(PasserelleError):
    """A combination of arguments argparse cannot express."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (status 2, one line already written) and --help (status 0)
        return exc.code if isinstance(exc.code, int) else 2
    before = set(logging.getLogger().handlers)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_format == "json":
        for handler in logging.getLogger().handlers:
            if handler not in before:
                handler.setFormatter(logs.JsonFormatter())
    if args.command != "serve":
        logging.getLogger().setLevel(max(logging.WARNING, logging.getLevelName(args.log_level)))
    # Database errors reach the log without the values they may quote; one warning does not flood it. On the
    # handlers made here only (a host process's own, pytest's for one, are its business).
    logs.install([h for h in logging.getLogger().handlers if h not in before])
    if logging.getLevelName(args.log_level) > logging.DEBUG:  # its context lines at every start: not for operators
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
        return _run(args, settings)
    except PasserelleError as exc:
        print(f"passerelle: error: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError:  # the database refused or failed: said without the values it may quote
        logging.getLogger("passerelle").exception("the database failed")
        print("passerelle: error: the database failed (see the log line above)", file=sys.stderr)
        return 1
