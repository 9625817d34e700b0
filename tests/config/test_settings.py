from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from config import ConfigError, Language, LobbyMode, SipTransport, load_settings
from config.settings import DEFAULT_FILE


def test_settings_defaults_load() -> None:
    s = load_settings(environ={})
    assert str(s.sip.listen) == "127.0.0.1:5060"
    assert s.sip.transports == (SipTransport.UDP, SipTransport.TCP)
    assert str(s.http.listen) == "127.0.0.1:8080"
    assert s.locale.default_language is Language.FR
    assert s.locale.timezone == "Europe/Paris"
    assert s.lobby.default_mode is LobbyMode.UNTIL_HOST
    assert s.mixer.sample_rate_hz == 48000
    assert s.mixer.frame_ms == 20
    assert s.schedule.open_before_min == 10
    assert s.database.url.reveal().startswith("sqlite:///")


def test_settings_every_default_key_documented() -> None:
    """Each key of default.toml has a comment right above it (or above its group of keys)."""
    lines = DEFAULT_FILE.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            above = lines[i - 1].strip()
            assert above.startswith("#") or re.match(r"^[a-z_]+\s*=", above), f"undocumented key: {line}"


def test_settings_dial_in_numbers_formatted() -> None:
    s = load_settings(environ={"PASSERELLE_DIAL_IN__NUMBERS": "+33491000000, +3225550100"})
    assert [n.e164 for n in s.dial_in.numbers] == ["+33491000000", "+3225550100"]
    assert s.dial_in.numbers[0].international == "+33 4 91 00 00 00"
    assert s.dial_in.numbers[0].national == "04 91 00 00 00"


def test_settings_precedence_env_over_file_over_default(tmp_path: Path) -> None:
    file = tmp_path / "site.toml"
    file.write_text('[http]\nlisten = "127.0.0.1:9000"\npublic_base_url = "https://visio.example.org/"\n')
    s = load_settings(file, environ={"PASSERELLE_HTTP__LISTEN": "[::1]:9100"})
    assert str(s.http.listen) == "[::1]:9100"
    assert s.http.public_base_url == "https://visio.example.org"
    assert load_settings(file, environ={}).http.listen.port == 9000


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PASSERELLE_SIP__LISTEN", "localhost", "sip.listen: expected host:port"),
        ("PASSERELLE_SIP__LISTEN", "127.0.0.1:70000", "sip.listen: expected host:port"),
        ("PASSERELLE_SIP__TRANSPORTS", "udp,sctp", 'sip.transports: expected a list of "udp", "tcp" or "tls"'),
        ("PASSERELLE_DIAL_IN__NUMBERS", "0491000000", "dial_in.numbers: expected a list of E.164 numbers"),
        ("PASSERELLE_DIAL_IN__NUMBERS", "+3349100", "dial_in.numbers: expected a list of E.164 numbers"),
        ("PASSERELLE_DIAL_IN__NUMBERS", "", "dial_in.numbers: expected a list of E.164 numbers (at least one)"),
        ("PASSERELLE_HTTP__PUBLIC_BASE_URL", "ftp://x", "http.public_base_url: expected an http:// or https://"),
        ("PASSERELLE_DATABASE__URL", "mysql://x", "database.url: expected an SQLAlchemy URL"),
        ("PASSERELLE_LOCALE__DEFAULT_LANGUAGE", "de", 'locale.default_language: expected one of "fr", "en"'),
        ("PASSERELLE_LOCALE__TIMEZONE", "Europe/Pariss", "locale.timezone: expected an IANA timezone name"),
        ("PASSERELLE_LOCALE__PHONE_REGION", "XX", "locale.phone_region: expected an ISO 3166"),
        ("PASSERELLE_CODES__ENTRY_CODE_MIN_DIGITS", "3", "codes.entry_code_min_digits: expected a whole number"),
        ("PASSERELLE_CODES__ENTRY_CODE_REQUIRED", "maybe", "codes.entry_code_required: expected true or false"),
        ("PASSERELLE_LOBBY__DEFAULT_MODE", "sometimes", "lobby.default_mode: expected one of"),
        ("PASSERELLE_LIMITS__CODE_ATTEMPTS_PER_CALL", "0", "limits.code_attempts_per_call: expected a whole"),
        ("PASSERELLE_MIXER__SAMPLE_RATE_HZ", "96000", "mixer.sample_rate_hz: expected a whole number"),
        ("PASSERELLE_MIXER__FRAME_MS", "7", "mixer.frame_ms: expected a whole number"),
        ("PASSERELLE_SCHEDULE__OPEN_BEFORE_MIN", "ten", "schedule.open_before_min: expected a whole number"),
    ],
)
def test_settings_bad_value_names_key_and_form(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={variable: value})
    message = str(err.value)
    assert message.startswith(expected), message
    assert f"environment variable {variable}" in message
    assert "\n" not in message


def test_settings_unknown_keys_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^http\.listn: unknown key in environment variable"):
        load_settings(environ={"PASSERELLE_HTTP__LISTN": "127.0.0.1:1"})
    file = tmp_path / "c.toml"
    file.write_text("[htp]\nlisten = 1\n")
    with pytest.raises(ConfigError, match=r"^htp: unknown section in .*c\.toml"):
        load_settings(file, environ={})
    file.write_text("[http]\nlisten = 1\n")
    with pytest.raises(ConfigError, match=r"^http\.listen: expected host:port.*c\.toml; got 1\)"):
        load_settings(file, environ={})


def test_settings_other_passerelle_variables_ignored() -> None:
    assert load_settings(environ={"PASSERELLE_TEST_DATABASE_URL": "x", "PASSERELLE_X": "y"})


def test_settings_bad_file_named(tmp_path: Path) -> None:
    file = tmp_path / "broken.toml"
    file.write_text("[http\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_settings(file, environ={})
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot be read"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_settings_cross_checks() -> None:
    with pytest.raises(ConfigError, match=r"^codes\.entry_code_min_digits: expected at most"):
        load_settings(
            environ={"PASSERELLE_CODES__ENTRY_CODE_MIN_DIGITS": "8", "PASSERELLE_CODES__ENTRY_CODE_MAX_DIGITS": "6"}
        )
    with pytest.raises(ConfigError, match=r"^sip\.tls_certificate"):
        load_settings(environ={"PASSERELLE_SIP__TRANSPORTS": "udp,tls"})


def test_settings_secrets_never_print() -> None:
    password, key = "s3cr3t-pw", "0123456789abcdef-key"
    s = load_settings(
        environ={
            "PASSERELLE_DATABASE__URL": f"postgresql+psycopg://bridge:{password}@db.internal:5432/passerelle",
            "PASSERELLE_SECURITY__SECRET_KEY": key,
        }
    )
    shown = [repr(s), str(s), repr(s.describe()), str(s.database.url), str(s.security.secret_key)]
    for text in shown:
        assert password not in text
        assert key not in text
    assert s.describe()["database"]["url"] == "postgresql+psycopg://bridge:••••••@db.internal:5432/passerelle"
    assert s.database.url.reveal().endswith(f"{password}@db.internal:5432/passerelle")
    assert s.security.secret_key.reveal() == key


def test_settings_bad_secret_value_not_echoed(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[security]\nsecret_key = 123456789\n")
    with pytest.raises(ConfigError) as err:
        load_settings(file, environ={})
    assert "123456789" not in str(err.value)
    assert str(err.value).startswith("security.secret_key: expected a string")


def test_settings_frozen() -> None:
    s = load_settings(environ={})
    with pytest.raises(AttributeError):
        s.http = s.http  # type: ignore[misc]


def test_settings_default_file_is_valid_toml() -> None:
    data = tomllib.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    assert set(data) == set(load_settings(environ={}).describe())
