"""One frozen, typed :class:`Settings`, read from ``default.toml``, an optional file and ``PASSERELLE_*`` variables.

``default.toml`` beside this module holds every key with its default and its documentation, so the dataclasses below
carry no defaults of their own: a key missing there is a bug caught by the tests.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from config import parsers as p
from config.enums import Language, LobbyMode, OpusApplication, SipTransport, SmtpSecurity
from config.errors import ConfigError
from config.parsers import DialInNumber, HostPort
from config.secret import Secret

DEFAULT_FILE = Path(__file__).with_name("default.toml")
ENV_PREFIX = "PASSERELLE_"
ENV_SEPARATOR = "__"

T = TypeVar("T")


def _setting(parse: p.Parser[Any], *, secret: bool = False) -> Any:
    return field(metadata={"parse": parse, "secret": secret})


@dataclass(frozen=True, slots=True)
class SipSettings:
    listen: HostPort = _setting(p.host_port)
    transports: tuple[SipTransport, ...] = _setting(
        p.listing(p.choice(SipTransport), '"udp", "tcp" or "tls"', non_empty=True)
    )
    tls_certificate: Path | None = _setting(p.optional_path)
    rtp_timeout_s: int = _setting(p.integer(5, 3600))
    max_calls: int = _setting(p.integer(1, 5000))
    ack_timeout_s: int = _setting(p.integer(1, 32))
    session_expires_s: int = _setting(p.integer(0, 86_400))
    first_media_timeout_s: int = _setting(p.integer(1, 60))
    max_menu_calls_per_caller: int = _setting(p.integer(1, 255))
    max_menu_calls_per_source: int = _setting(p.integer(1, 5000))
    srtp_required: bool = _setting(p.boolean)
    trusted_sources: tuple[str, ...] = _setting(p.listing(p.ip_network, "IP addresses or networks"))
    proxies: tuple[str, ...] = _setting(p.listing(p.ip_network, "IP addresses or networks"))
    rtp_port_min: int = _setting(p.integer(1024, 65535))
    rtp_port_max: int = _setting(p.integer(1024, 65535))


@dataclass(frozen=True, slots=True)
class DialInSettings:
    numbers: tuple[DialInNumber, ...] = _setting(p.listing(p.e164_number, "E.164 numbers", non_empty=True))


@dataclass(frozen=True, slots=True)
class TrunkSettings:
    domain: str = _setting(p.sip_host)
    outbound_proxy: str = _setting(p.sip_host)
    transport: SipTransport = _setting(p.choice(SipTransport))
    username: str = _setting(p.sip_user)
    password: Secret = _setting(p.secret, secret=True)
    caller_id: str = _setting(p.sip_user)
    allowed_countries: tuple[str, ...] = _setting(p.listing(p.region, "ISO 3166 alpha-2 regions", non_empty=True))
    answer_timeout_s: int = _setting(p.integer(5, 300))
    register_s: int = _setting(p.integer(0, 86_400))


@dataclass(frozen=True, slots=True)
class AsteriskSettings:
    ami: HostPort | None = _setting(p.optional_host_port)
    username: str = _setting(p.sip_user)
    secret: Secret = _setting(p.secret, secret=True)
    channel: str = _setting(p.channel_template)
    bridge_endpoint: str = _setting(p.sip_user)


@dataclass(frozen=True, slots=True)
class WebRtcSettings:
    ice_servers: tuple[str, ...] = _setting(p.listing(p.ice_url, "STUN/TURN URLs"))
    turn_username: str = _setting(p.sip_user)
    turn_password: Secret = _setting(p.secret, secret=True)
    host_addresses: tuple[str, ...] = _setting(p.listing(p.ip_address, "IP addresses"))
    opus_bitrate: int = _setting(p.integer(8000, 128000))
    opus_complexity: int = _setting(p.integer(0, 10))
    opus_application: OpusApplication = _setting(p.choice(OpusApplication))


@dataclass(frozen=True, slots=True)
class VideoSettings:
    janus_socket: Path | None = _setting(p.optional_path)
    folder: Path = _setting(p.path)
    rtp_port_min: int = _setting(p.integer(1024, 65535))
    rtp_port_max: int = _setting(p.integer(1024, 65535))
    screen_fps: int = _setting(p.integer(1, 30))


@dataclass(frozen=True, slots=True)
class FilesSettings:
    folder: Path = _setting(p.path)
    max_mb: int = _setting(p.integer(1, 2048))
    quota_mb: int = _setting(p.integer(1, 100_000))
    clamd: Path | None = _setting(p.optional_path)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    listen: HostPort = _setting(p.host_port)
    public_base_url: str = _setting(p.base_url)
    session_hours: int = _setting(p.integer(1, 24 * 7))
    login_failures: int = _setting(p.integer(1, 100))
    trusted_proxies: tuple[str, ...] = _setting(p.listing(p.ip_address, "IP addresses"))


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    node: str = _setting(p.node_name)
    sip_address: str = _setting(p.sip_host)


@dataclass(frozen=True, slots=True)
class ControlSettings:
    socket: Path | None = _setting(p.optional_path)
    metrics: HostPort | None = _setting(p.optional_host_port)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: Secret = _setting(p.database_url, secret=True)


@dataclass(frozen=True, slots=True)
class LocaleSettings:
    default_language: Language = _setting(p.choice(Language))
    timezone: str = _setting(p.timezone_name)
    phone_region: str = _setting(p.region)


@dataclass(frozen=True, slots=True)
class CodeSettings:
    entry_code_min_digits: int = _setting(p.integer(4, 8))
    entry_code_max_digits: int = _setting(p.integer(4, 8))
    random_entry_code_digits: int = _setting(p.integer(6, 8))
    entry_code_required: bool = _setting(p.boolean)
    reuse_after_days: int = _setting(p.integer(0, 3650))


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    open_before_min: int = _setting(p.integer(0, 24 * 60))
    grace_after_min: int = _setting(p.integer(0, 24 * 60))


@dataclass(frozen=True, slots=True)
class LobbySettings:
    default_mode: LobbyMode = _setting(p.choice(LobbyMode))


@dataclass(frozen=True, slots=True)
class LimitSettings:
    code_attempts_per_call: int = _setting(p.integer(1, 10))
    failures_per_caller: int = _setting(p.integer(1, 10_000))
    failures_window_s: int = _setting(p.integer(1, 7 * 86_400))
    global_failures_alarm_per_min: int = _setting(p.integer(1, 1_000_000))
    conference_free_failures: int = _setting(p.integer(1, 1000))
    delay_initial_s: int = _setting(p.integer(1, 3600))
    delay_max_s: int = _setting(p.integer(1, 3600))
    first_digit_timeout_s: int = _setting(p.integer(1, 120))
    inter_digit_timeout_s: int = _setting(p.integer(1, 60))


@dataclass(frozen=True, slots=True)
class PromptSettings:
    folder: Path | None = _setting(p.optional_path)
    built_in: bool = _setting(p.boolean)


@dataclass(frozen=True, slots=True)
class MixerSettings:
    sample_rate_hz: int = _setting(p.integer(8000, 48000))
    frame_ms: int = _setting(p.integer(10, 60))
    top_n: int = _setting(p.integer(1, 64))
    realtime_priority: int = _setting(p.integer(0, 99))


@dataclass(frozen=True, slots=True)
class RetrySettings:
    max_attempts: int = _setting(p.integer(1, 100))
    backoff_initial_s: int = _setting(p.integer(1, 86_400))
    backoff_max_s: int = _setting(p.integer(1, 7 * 86_400))


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    outbox_days: int = _setting(p.integer(1, 3650))
    invitees_days: int = _setting(p.integer(1, 3650))
    audit_days: int = _setting(p.integer(1, 3650))
    chat_days: int = _setting(p.integer(1, 3650))
    files_days: int = _setting(p.integer(1, 3650))
    purge_every_min: int = _setting(p.integer(1, 24 * 60))


@dataclass(frozen=True, slots=True)
class EmailSettings:
    smtp: HostPort | None = _setting(p.optional_host_port)
    security: SmtpSecurity = _setting(p.choice(SmtpSecurity))
    username: str = _setting(p.sip_user)
    password: Secret = _setting(p.secret, secret=True)
    sender: str = _setting(p.sender_address)
    timeout_s: int = _setting(p.integer(1, 300))


@dataclass(frozen=True, slots=True)
class SmsSettings:
    url: str = _setting(p.sms_url_template)
    username: str = _setting(p.sip_user)
    password: Secret = _setting(p.secret, secret=True)
    sender: str = _setting(p.sip_user)
    sender_name: str = _setting(p.short_name)
    timeout_s: int = _setting(p.integer(1, 300))


@dataclass(frozen=True, slots=True)
class OidcSettings:
    issuer: str = _setting(p.optional_base_url)
    client_id: str = _setting(p.sip_user)
    client_secret: Secret = _setting(p.secret, secret=True)
    scope: str = _setting(p.oidc_scope)
    username_claim: str = _setting(p.sip_user)
    create_users: bool = _setting(p.boolean)
    local_login: bool = _setting(p.boolean)


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    secret_key: Secret = _setting(p.secret, secret=True)


@dataclass(frozen=True, slots=True)
class Settings:
    sip: SipSettings
    dial_in: DialInSettings
    trunk: TrunkSettings
    asterisk: AsteriskSettings
    webrtc: WebRtcSettings
    video: VideoSettings
    files: FilesSettings
    http: HttpSettings
    control: ControlSettings
    cluster: ClusterSettings
    database: DatabaseSettings
    locale: LocaleSettings
    codes: CodeSettings
    schedule: ScheduleSettings
    lobby: LobbySettings
    limits: LimitSettings
    prompts: PromptSettings
    mixer: MixerSettings
    retry: RetrySettings
    retention: RetentionSettings
    email: EmailSettings
    sms: SmsSettings
    oidc: OidcSettings
    security: SecuritySettings

    def describe(self) -> dict[str, dict[str, object]]:
        """Every setting as plain values for display; secrets appear masked."""
        out: dict[str, dict[str, object]] = {}
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            out[section.name] = {f.name: _display(getattr(values, f.name)) for f in dataclasses.fields(values)}
        return out


def _display(value: object) -> object:
    if isinstance(value, tuple):
        return [_display(v) for v in value]
    if isinstance(value, DialInNumber):
        return value.e164
    if isinstance(value, bool | int):
        return value
    if value is None:
        return ""
    return str(value)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML ({exc})") from None


def _section_classes() -> dict[str, type[Any]]:
    hints = {f.name: f.type for f in dataclasses.fields(Settings)}
    return {name: globals()[str(hint)] for name, hint in hints.items()}


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the defaults, then ``config_file``, then ``environ`` (default: ``os.environ``).

    Raises :class:`ConfigError` naming the first unknown key or bad value, and where it came from.
    """
    env = os.environ if environ is None else environ
    sections = _section_classes()
    raw: dict[str, dict[str, tuple[object, str]]] = {name: {} for name in sections}

    def merge(data: dict[str, Any], source: str) -> None:
        for section, table in data.items():
            if section not in sections:
                raise ConfigError(f"{section}: unknown section in {source} (known: {', '.join(sections)})")
            if not isinstance(table, dict):
                raise ConfigError(f"{section}: expected a [{section}] table in {source}")
            known = {f.name for f in dataclasses.fields(sections[section])}
            for key, value in table.items():
                if key not in known:
                    raise ConfigError(f"{section}.{key}: unknown key in {source}")
                raw[section][key] = (value, source)

    merge(_read_toml(DEFAULT_FILE), "default.toml")
    if config_file is not None:
        merge(_read_toml(config_file), str(config_file))
    for name, env_value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or ENV_SEPARATOR not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition(ENV_SEPARATOR)
        merge({section: {key: env_value}}, f"environment variable {name}")

    built: dict[str, Any] = {}
    for section, cls in sections.items():
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in raw[section]:
                raise ConfigError(f"{section}.{f.name}: missing from default.toml")
            value, source = raw[section][f.name]
            try:
                values[f.name] = f.metadata["parse"](value)
            except p.BadValue as exc:
                shown = "" if f.metadata["secret"] else f"; got {value!r}"
                raise ConfigError(f"{section}.{f.name}: expected {exc} (from {source}{shown})") from None
        built[section] = cls(**values)
    settings = Settings(**built)
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    if s.codes.entry_code_min_digits > s.codes.entry_code_max_digits:
        raise ConfigError(
            "codes.entry_code_min_digits: expected at most codes.entry_code_max_digits "
            f"({s.codes.entry_code_min_digits} > {s.codes.entry_code_max_digits})"
        )
    if s.codes.random_entry_code_digits > s.codes.entry_code_max_digits:
        raise ConfigError("codes.random_entry_code_digits: expected at most codes.entry_code_max_digits")
    if s.limits.delay_initial_s > s.limits.delay_max_s:
        raise ConfigError("limits.delay_initial_s: expected at most limits.delay_max_s")
    if s.sip.rtp_port_max - s.sip.rtp_port_min < 2 * s.sip.max_calls:
        raise ConfigError("sip.rtp_port_max: expected two ports per call (sip.max_calls) above sip.rtp_port_min")
    if s.video.rtp_port_max - s.video.rtp_port_min < 100:
        raise ConfigError("video.rtp_port_max: expected at least 100 ports above video.rtp_port_min")
    if SipTransport.TLS in s.sip.transports and s.sip.tls_certificate is None:
        raise ConfigError('sip.tls_certificate: expected a PEM file path when sip.transports holds "tls"')
    if s.retry.backoff_initial_s > s.retry.backoff_max_s:
        raise ConfigError("retry.backoff_initial_s: expected at most retry.backoff_max_s")
    if (s.mixer.sample_rate_hz * s.mixer.frame_ms) % 1000:
        raise ConfigError("mixer.frame_ms: expected a whole number of samples per frame at mixer.sample_rate_hz")
