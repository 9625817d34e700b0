"""Direct links into a conference: forged, altered, expired and replayed ones lead nowhere."""

from __future__ import annotations

import uuid

import pytest

from bridge.sip.direct import DirectLinks, user_of


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def test_a_link_leads_to_its_conference_once() -> None:
    clock = Clock()
    links = DirectLinks("k" * 64, clock)
    room = uuid.uuid4()
    user = links.user_part(room)
    assert links.conference(user) == room
    assert links.conference(user) is None, "a link used twice"


def test_links_die_when_they_expire() -> None:
    clock = Clock()
    links = DirectLinks("k" * 64, clock, valid_s=60)
    user = links.user_part(uuid.uuid4())
    clock.t += 61
    assert links.conference(user) is None


@pytest.mark.parametrize("change", ["conference", "expiry", "mac", "key"])
def test_altered_or_foreign_links_are_refused(change: str) -> None:
    clock = Clock()
    links = DirectLinks("k" * 64, clock)
    user = links.user_part(uuid.uuid4())
    _, conference, expires, mac = user.split("-")
    if change == "conference":
        user = f"c-{uuid.uuid4().hex}-{expires}-{mac}"
    elif change == "expiry":
        user = f"c-{conference}-{int(expires) + 3600}-{mac}"
    elif change == "mac":
        user = f"c-{conference}-{expires}-{'0' * 32}"
    else:
        user = DirectLinks("another key", clock).user_part(uuid.UUID(conference))
    assert links.conference(user) is None


@pytest.mark.parametrize("user", ["", "c-", "c-zz-1-2", "+33491000000", "c-" + "a" * 32 + "-1-" + "b" * 31])
def test_anything_else_is_no_link(user: str) -> None:
    assert DirectLinks("", Clock()).conference(user) is None


def test_user_part_of_a_header() -> None:
    assert user_of("<sip:c-abc@127.0.0.1:5060>") == "c-abc"
    assert user_of('"Clinic" <sip:+33491000000@pbx.example;user=phone>;tag=1') == "+33491000000"
    assert user_of("sip:host.example") == ""
