"""In-band DTMF detection for many legs at once (ITU-T Q.24 receiver requirements).

Each 5 ms *hop* of every leg ends a 20 ms Hann window; one matrix product gives, for all legs and windows, the
complex spectrum at the eight DTMF frequencies and the energy below 575 Hz (dial tones, hum). A window *looks
like* digit d when, after correcting each tone's level for its measured frequency offset:

- its row and column tones are the strongest of their groups and each louder than ``min_level_dbm0``;
- the twist (row level − column level) lies within ``max_normal_twist_db`` / ``max_reverse_twist_db``;
- every hop of the window carries at least ``cover_ratio`` of the two tones' power (the tone fills the window);
- the two tones hold at least ``min_purity`` of the window's energy above 575 Hz (speech, music and
  noise spread their energy; a third tone 16 dB down or white noise 15 dB down do not);
- each tone's *frequency*, measured from its phase advance between consecutive windows (5 ms apart, unambiguous
  to ±100 Hz), is within ``max_offset_pct`` of nominal — a direct measurement, where Goertzel detectors infer
  frequency from how much energy leaks out of a bin.

A digit starts after ``confirm_windows`` consecutive windows look like it (so ≥ 30 ms of clean tone: a 20 ms burst
never counts). It lasts while each hop keeps at least ``hold_ratio`` of the digit's power, and ends after
``end_hops`` quiet hops (25 ms): a 10 ms interruption (≤ 2 quiet hops), or even a 20 ms packet lost and replaced
by silence (≤ 4), never splits a digit; a 40 ms pause (≥ 7) always separates two. Times are in samples since the
leg started.

The detector can also hand back each leg's audio delayed by ``delay_ms`` with every digit muted from
``margin_ms`` before its start to ``margin_ms`` after its end, so a conference never hears keypad tones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from dtmf.tones import COL_HZ, DBM0_AMPLITUDE, ROW_HZ, digit_at

FREQS_HZ = ROW_HZ + COL_HZ
LOW_BAND_BINS = 12  # 0 to 550 Hz in the 50 Hz bins of a 20 ms window: dial tones (350, 425, 440, 450 Hz), hum


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    hop_ms: float = 5.0
    window_hops: int = 4
    min_level_dbm0: float = -45.0
    max_normal_twist_db: float = 9.0
    max_reverse_twist_db: float = 7.0
    min_purity: float = 0.8
    max_offset_pct: float = 2.5
    confirm_windows: int = 3
    hold_ratio: float = 0.3
    cover_ratio: float = 0.5
    end_hops: int = 5
    delay_ms: float = 40.0
    margin_ms: float = 20.0


@dataclass(frozen=True, slots=True)
class DigitEvent:
    """A digit heard on ``leg``: ``end`` is None when the event reports its start (the tone still sounds)."""

    leg: int
    digit: str
    start: int
    end: int | None

    def start_ms(self, rate_hz: int) -> float:
        return self.start * 1000.0 / rate_hz

    def end_ms(self, rate_hz: int) -> float | None:
        return None if self.end is None else self.end * 1000.0 / rate_hz


@dataclass(slots=True)
class _Mute:
    start: int
    end: int | None  # None while the digit sounds


@dataclass
class DetectorOutput:
    events: list[DigitEvent]
    audio: npt.NDArray[np.int16] | None = None  # delayed, tones muted (when asked for)
    active: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))


class DtmfDetector:
    """Streams ``legs`` channels at ``rate_hz`` (any rate ≥ 8 kHz, any frame size)."""

    def __init__(self, rate_hz: int, legs: int = 1, config: DetectorConfig | None = None) -> None:
        cfg = config or DetectorConfig()
        self.config, self.rate_hz, self.legs = cfg, rate_hz, legs
        self.hop = round(rate_hz * cfg.hop_ms / 1000)
        self.window = self.hop * cfg.window_hops
        if rate_hz < 8000 or self.hop < 8:
            raise ValueError("the detector needs at least 8 kHz")
        if round(self.window * 1000 / rate_hz) != 20 or self.window * 50 != rate_hz:
            raise ValueError("the window must be 20 ms (4 hops of 5 ms) so its DFT bins fall every 50 Hz")
        n = np.arange(self.window)
        hann = np.hanning(self.window + 2)[1:-1]  # no zero end points
        tone_phase = 2 * np.pi * np.outer(n, np.array(FREQS_HZ)) / rate_hz
        # The low band of the windowed signal in its 50 Hz DFT bins: they are orthogonal, so by Parseval their
        # energies add up exactly to its energy below 575 Hz, however many tones share a bin; and the Hann
        # window keeps a dial tone's energy from leaking above (a plain window leaked 7 % of a 425 Hz tone).
        low_phase = 2 * np.pi * np.outer(n, np.arange(LOW_BAND_BINS)) / self.window
        basis = hann[:, None] * np.concatenate(
            [np.cos(tone_phase), -np.sin(tone_phase), np.cos(low_phase), -np.sin(low_phase)], axis=1
        )
        self._basis = basis.astype(np.float32)
        self._tone_count = len(FREQS_HZ)
        # |X|² → power of a sine at the bin frequency: A²/2 = 2|X|²/(Σw)²
        self._power_scale = np.float32(2.0 / hann.sum() ** 2)
        energy_norm = float((hann**2).sum())
        self._hann_squared = (hann**2 / energy_norm).astype(np.float32)  # Σ w²x² / Σ w²: windowed mean power
        low_weights = np.full(LOW_BAND_BINS, 2.0)
        low_weights[0] = 1.0
        self._low_weights = (low_weights / (self.window * energy_norm)).astype(np.float32)
        self._hop_advance = (2 * np.pi * np.array(FREQS_HZ) * self.hop / rate_hz).astype(np.float32)
        self._spacing_bins = self.window * np.array(FREQS_HZ) / rate_hz  # for the leakage correction
        self._min_power = np.float32(dbm0_power(cfg.min_level_dbm0))
        self._delay = round(rate_hz * cfg.delay_ms / 1000)
        self._margin = round(rate_hz * cfg.margin_ms / 1000)
        self._history = np.zeros((legs, self.window - self.hop), np.float32)
        self._pending = np.zeros((legs, 0), np.float32)
        self._delayed = np.zeros((legs, self._delay), np.int16)
        self._position = 0  # samples consumed per leg (all legs advance together)
        self._origin = np.zeros(legs, np.int64)  # where each leg's own time starts
        self._prev = np.zeros((legs, len(FREQS_HZ)), np.complex64)
        self._hop_energy = np.zeros((legs, cfg.window_hops), np.float32)
        # digit state, one entry per leg
        self._candidate = np.full(legs, -1, np.int32)
        self._run = np.zeros(legs, np.int32)
        self._run_start = np.zeros(legs, np.int64)
        self._digit = np.full(legs, -1, np.int32)
        self._digit_power = np.zeros(legs, np.float32)
        self._quiet = np.zeros(legs, np.int32)
        self._last_on = np.zeros(legs, np.int64)
        self._enabled = np.ones(legs, bool)
        self._mutes: list[list[_Mute]] = [[] for _ in range(legs)]

    # -- control -------------------------------------------------------------------------------------------------

    def reset(self, leg: int) -> None:
        """Start ``leg`` afresh (a new call on that row): no state, its time counted from now."""
        self._history[leg] = 0
        self._pending[leg] = 0
        self._delayed[leg] = 0
        self._prev[leg] = 0
        self._hop_energy[leg] = 0
        self._candidate[leg] = -1
        self._run[leg] = 0
        self._digit[leg] = -1
        self._quiet[leg] = 0
        self._mutes[leg] = []
        self._origin[leg] = self._position + self._pending.shape[1]

    def set_enabled(self, leg: int, enabled: bool) -> None:
        """Stop (or resume) detecting on ``leg``: e.g. once RFC 4733 events arrive on its call."""
        self._enabled[leg] = enabled
        if not enabled:
            self._candidate[leg] = -1
            self._run[leg] = 0
            self._digit[leg] = -1

    @property
    def delay_samples(self) -> int:
        return self._delay

    # -- processing ----------------------------------------------------------------------------------------------

    def process(self, frames: npt.NDArray[np.int16], *, clean: bool = False) -> DetectorOutput:
        """Feed ``(legs, n)`` samples; returns the digits that started or ended, and optionally the cleaned audio."""
        x = np.asarray(frames)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[0] != self.legs:
            raise ValueError(f"expected {self.legs} legs, got {x.shape[0]}")
        events: list[DigitEvent] = []
        pending = np.concatenate([self._pending, x.astype(np.float32)], axis=1)
        hops = pending.shape[1] // self.hop
        if hops:
            events = self._hops(pending[:, : hops * self.hop], hops)
        self._pending = pending[:, hops * self.hop :].copy()
        self._position += hops * self.hop
        audio = self._clean(x) if clean else None
        return DetectorOutput(events, audio, self._digit >= 0)

    def _hops(self, samples: npt.NDArray[np.float32], hops: int) -> list[DigitEvent]:
        cfg = self.config
        legs, hop, window = self.legs, self.hop, self.window
        data = np.concatenate([self._history, samples], axis=1)
        self._history = data[:, data.shape[1] - (window - hop) :].copy()
        row, col = data.strides
        windows = as_strided(data, (legs, hops, window), (row, col * hop, col), writeable=False)
        block = np.array(windows, dtype=np.float32, order="C")  # a copy: squared in place below
        spectrum = np.matmul(block, self._basis)  # (legs, hops, columns)
        np.square(block, out=block)
        total = block @ self._hann_squared
        nt = self._tone_count
        tones = (spectrum[..., :nt] + 1j * spectrum[..., nt : 2 * nt]).astype(np.complex64)
        low = spectrum[..., 2 * nt :]
        low_power = (low[..., :LOW_BAND_BINS] ** 2 + low[..., LOW_BAND_BINS:] ** 2) @ self._low_weights

        hop_blocks = samples.reshape(legs, hops, hop)
        hop_energy = np.einsum("lhs,lhs->lh", hop_blocks, hop_blocks) / np.float32(hop)  # mean power per hop
        energy = np.concatenate([self._hop_energy, hop_energy], axis=1)
        self._hop_energy = energy[:, -cfg.window_hops :].copy()
        lowest = as_strided(
            energy[:, energy.shape[1] - hops - cfg.window_hops + 1 :],
            (legs, hops, cfg.window_hops),
            (energy.strides[0], energy.strides[1], energy.strides[1]),
            writeable=False,
        ).min(axis=2)

        # Frequency from the phase advance between consecutive windows.
        previous = np.concatenate([self._prev[:, None, :], tones[:, :-1, :]], axis=1)
        self._prev = tones[:, -1, :].copy()
        advance = np.angle(tones * np.conj(previous)) - self._hop_advance
        advance = (advance + np.pi) % (2 * np.pi) - np.pi
        offset_hz = advance * self.rate_hz / (2 * np.pi * hop)
        offset_pct = 100.0 * offset_hz / np.array(FREQS_HZ, np.float32)

        power = np.abs(tones) ** 2 * self._power_scale

        rows, cols = power[..., :4], power[..., 4:]
        best_row, best_col = rows.argmax(axis=2), cols.argmax(axis=2)
        row_power = np.take_along_axis(rows, best_row[..., None], axis=2)[..., 0]
        col_power = np.take_along_axis(cols, best_col[..., None], axis=2)[..., 0]
        row_offset = np.take_along_axis(offset_pct[..., :4], best_row[..., None], axis=2)[..., 0]
        col_offset = np.take_along_axis(offset_pct[..., 4:], best_col[..., None], axis=2)[..., 0]
        # A tone off its bin loses level through the window's main lobe: give it back (Hann response at δ bins).
        # Only for the chosen bins: a neighbour bin must not win by being "corrected" into the lead.
        row_hz = np.asarray(ROW_HZ, np.float32)[best_row]
        col_hz = np.asarray(COL_HZ, np.float32)[best_col]
        for chosen, offset, hz in ((row_power, row_offset, row_hz), (col_power, col_offset, col_hz)):
            delta = np.clip(np.abs(offset) * hz / 100.0 * window / self.rate_hz, 0.0, 1.5)
            chosen /= np.maximum(_hann_response(delta) ** 2, 1e-2).astype(np.float32)
        twist_db = 10 * np.log10(np.maximum(row_power, 1e-9) / np.maximum(col_power, 1e-9))
        purity = (row_power + col_power) / np.maximum(total - low_power, 1e-9)
        looks = (
            (lowest >= cfg.cover_ratio * (row_power + col_power))  # the tone fills the whole window
            & (row_power >= self._min_power)
            & (col_power >= self._min_power)
            & (twist_db <= cfg.max_normal_twist_db)
            & (twist_db >= -cfg.max_reverse_twist_db)
            & (purity >= cfg.min_purity)
            & (np.abs(row_offset) <= cfg.max_offset_pct)
            & (np.abs(col_offset) <= cfg.max_offset_pct)
        )
        looks &= self._enabled[:, None]
        candidate = np.where(looks, best_row * 4 + best_col, -1)
        return self._track(candidate, row_power + col_power, hop_energy, hops)

    def _track(
        self,
        candidate: npt.NDArray[np.integer],
        digit_power: npt.NDArray[np.float32],
        hop_energy: npt.NDArray[np.float32],
        hops: int,
    ) -> list[DigitEvent]:
        """The digit state machine, one window (= one hop) at a time, vectorised over legs."""
        cfg = self.config
        events: list[DigitEvent] = []
        for h in range(hops):
            hop_end = self._position + (h + 1) * self.hop
            window_start = hop_end - self.window
            cand = candidate[:, h]
            same = (cand >= 0) & (cand == self._candidate)
            self._run = np.where(same, self._run + 1, np.where(cand >= 0, 1, 0))
            self._run_start = np.where(same, self._run_start, window_start)
            self._candidate = cand.astype(np.int32)

            active = self._digit >= 0
            # Is the sounding digit still there in this hop?
            on = active & (hop_energy[:, h] >= cfg.hold_ratio * self._digit_power)
            self._quiet = np.where(active & ~on, self._quiet + 1, 0)
            self._last_on = np.where(on, hop_end, self._last_on)
            confirmed = (self._run >= cfg.confirm_windows) & (cand >= 0)
            switch = active & confirmed & (cand != self._digit)
            ended = (active & (self._quiet >= cfg.end_hops)) | switch
            for leg in np.flatnonzero(ended):
                self._finish(int(leg), events)
            starting = confirmed & (self._digit < 0)
            for leg in np.flatnonzero(starting):
                digit = int(cand[leg])
                self._digit[leg] = digit
                self._digit_power[leg] = digit_power[leg, h]
                self._quiet[leg] = 0
                self._last_on[leg] = hop_end
                start = int(self._run_start[leg])
                events.append(
                    DigitEvent(int(leg), digit_at(digit // 4, digit % 4), start - int(self._origin[leg]), None)
                )
                self._mutes[leg].append(_Mute(start - self._margin, None))
        return events

    def _finish(self, leg: int, events: list[DigitEvent]) -> None:
        digit = int(self._digit[leg])
        end = int(self._last_on[leg])
        start_event = next(m for m in reversed(self._mutes[leg]) if m.end is None) if self._mutes[leg] else None
        if start_event is not None:
            start_event.end = end + self._margin
        origin = int(self._origin[leg])
        start = (start_event.start + self._margin if start_event else end) - origin
        events.append(DigitEvent(leg, digit_at(digit // 4, digit % 4), start, end - origin))
        self._digit[leg] = -1
        self._quiet[leg] = 0

    def _clean(self, frames: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """The audio ``delay_ms`` late, with every digit (± margin) muted."""
        n = frames.shape[1]
        joined = np.concatenate([self._delayed, frames.astype(np.int16)], axis=1)
        out = joined[:, :n].copy()
        self._delayed = joined[:, n:].copy()
        consumed = self._position + self._pending.shape[1]
        out_start = consumed - n - self._delay  # absolute position of out[:, 0]
        for leg, mutes in enumerate(self._mutes):
            if not mutes:
                continue
            for mute in mutes:
                a = max(mute.start - out_start, 0)
                b = n if mute.end is None else min(mute.end - out_start, n)
                if a < b:
                    out[leg, a:b] = 0
            self._mutes[leg] = [m for m in mutes if m.end is None or m.end > out_start + n]
        return out


def _hann_response(delta_bins: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """Amplitude response of a Hann window to a sine ``delta_bins`` away from the bin centre (1 at 0)."""
    d = np.asarray(delta_bins, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        response = np.sinc(d) / (1.0 - d * d)
    out: npt.NDArray[np.float64] = np.where(
        np.abs(d) < 1e-6, 1.0, np.where(np.abs(np.abs(d) - 1) < 1e-6, 0.5, response)
    )
    return out


def dbm0_power(dbm0: float) -> float:
    """Mean power (int16 scale) of a sine at ``dbm0``."""
    return float((DBM0_AMPLITUDE * 10 ** (dbm0 / 20)) ** 2 / 2)
