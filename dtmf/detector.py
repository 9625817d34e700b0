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
never counts), if neither of its tones sounded just before it began (a keypad starts both at once; in music a note
is often already held when another joins it). It lasts while each hop keeps at least ``hold_ratio`` of the
digit's power, and ends after ``end_hops`` quiet hops (25 ms): a 10 ms interruption (≤ 2 quiet hops), or even a
20 ms packet lost and replaced by silence (≤ 4), never splits a digit; a 40 ms pause (≥ 7) always separates two.
Times are in samples since the leg started.

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
    max_offset_pct: float = 2.0
    confirm_windows: int = 3
    onset_quiet_ratio: float = 0.1
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
        self._tone_basis = (hann[:, None] * np.concatenate([np.cos(tone_phase), -np.sin(tone_phase)], axis=1)).astype(
            np.float32
        )
        self._low_basis = (hann[:, None] * np.concatenate([np.cos(low_phase), -np.sin(low_phase)], axis=1)).astype(
            np.float32
        )
        self._tone_count = len(FREQS_HZ)
        # |X|² → power of a sine at the bin frequency: A²/2 = 2|X|²/(Σw)²
        self._power_scale = np.float32(2.0 / hann.sum() ** 2)
        energy_norm = float((hann**2).sum())
        self._hann_squared = (hann**2 / energy_norm).astype(np.float32)  # Σ w²x² / Σ w²: windowed mean power
        low_weights = np.full(LOW_BAND_BINS, 2.0)
        low_weights[0] = 1.0
        self._low_weights = (np.tile(low_weights, 2) / (self.window * energy_norm)).astype(np.float32)
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
        # Low-band energy that has been there for the last second (a dial tone, hum): minimum statistics over
        # 8 blocks of 25 windows, as in mixer/vad.py.
        self._low_block_windows = 25
        self._low_blocks = np.zeros((legs, 8), np.float32)  # a block not yet seen holds nothing steady
        self._low_running = np.full(legs, np.inf, np.float32)
        self._windows_seen = 0
        self._onset_lookback = 5  # windows between the one before a tone began and its first full window
        self._bin_history = np.zeros((legs, cfg.confirm_windows + self._onset_lookback + 4, 8), np.float32)
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
        self._bin_history[leg] = 0
        self._low_blocks[leg] = 0.0
        self._low_running[leg] = np.inf
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
        if self._pending.shape[1]:
            pending = np.concatenate([self._pending, x.astype(np.float32)], axis=1)
        else:
            pending = x.astype(np.float32)
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
        nt = self._tone_count
        width = cfg.window_hops
        # One contiguous copy of the windows makes the product a single BLAS call; computing it per hop from four
        # quarter-window bases (no copy) measured twice as slow.
        block = np.array(windows, dtype=np.float32, order="C").reshape(legs * hops, window)
        spectrum = block @ self._tone_basis  # (legs·hops, 16): the DTMF bins of every window
        re, im = spectrum[:, :nt], spectrum[:, nt:]
        power = ((re * re + im * im) * self._power_scale).reshape(legs, hops, nt)
        rows, cols = power[..., :4], power[..., 4:]
        best_row, best_col = rows.argmax(axis=2), cols.argmax(axis=2)
        row_power = np.take_along_axis(rows, best_row[..., None], axis=2)[..., 0]
        col_power = np.take_along_axis(cols, best_col[..., None], axis=2)[..., 0]

        hop_blocks = samples.reshape(legs, hops, hop)
        hop_energy = np.einsum("lhs,lhs->lh", hop_blocks, hop_blocks) / np.float32(hop)  # mean power per hop
        energy = np.concatenate([self._hop_energy, hop_energy], axis=1)
        self._hop_energy = energy[:, -cfg.window_hops :].copy()
        first = energy.shape[1] - hops - width + 1  # energy index of the first hop of this call's first window
        rect_total = energy[:, first : first + hops].copy()
        for i in range(1, width):
            rect_total += energy[:, first + i : first + i + hops]
        rect_total /= np.float32(width)

        # Cheap screen: most windows of most legs hold no digit; only those that might go further.
        loose = np.float32(0.25)  # up to 6 dB of level an off-frequency tone may still get back below
        steady = self._steady_low(block.reshape(legs, hops, window)[:, -1], hops)
        maybe = (
            (row_power >= loose * self._min_power)
            & (col_power >= loose * self._min_power)
            & (row_power + col_power >= loose * cfg.min_purity * (rect_total - 2.0 * steady[:, None]))
            & self._enabled[:, None]
        )
        candidate = np.full((legs, hops), -1, np.int32)
        digit_power = np.zeros((legs, hops), np.float32)
        legs_idx, hops_idx = np.nonzero(maybe)
        if legs_idx.size:
            chosen_windows = block[legs_idx * hops + hops_idx]
            total = np.square(chosen_windows) @ self._hann_squared  # windowed mean power Σw²x²/Σw²
            low = chosen_windows @ self._low_basis
            low_power = (low * low) @ self._low_weights
            rows_sel, cols_sel = best_row[legs_idx, hops_idx], best_col[legs_idx, hops_idx]
            # Frequency from the phase advance between consecutive windows (5 ms apart).
            tones = (re + 1j * im).astype(np.complex64).reshape(legs, hops, nt)
            previous = np.concatenate([self._prev[:, None, :], tones[:, :-1, :]], axis=1)
            offsets = []
            for bins, base in ((rows_sel, 0), (cols_sel, 4)):
                now = tones[legs_idx, hops_idx, base + bins]
                before = previous[legs_idx, hops_idx, base + bins]
                advance = np.angle(now * np.conj(before)) - self._hop_advance[base + bins]
                advance = (advance + np.pi) % (2 * np.pi) - np.pi
                offsets.append(advance * self.rate_hz / (2 * np.pi * hop))  # Hz
            self._prev = tones[:, -1, :].copy()
            r_power = row_power[legs_idx, hops_idx].copy()
            c_power = col_power[legs_idx, hops_idx].copy()
            # A tone off its bin loses level through the window's main lobe: give it back (Hann response at δ
            # bins), for the chosen bins only — a neighbour bin must not win by being "corrected" into the lead.
            for chosen, offset_hz in ((r_power, offsets[0]), (c_power, offsets[1])):
                delta = np.clip(np.abs(offset_hz) * window / self.rate_hz, 0.0, 1.5)
                chosen /= np.maximum(_hann_response(delta) ** 2, 1e-2).astype(np.float32)
            lowest = energy[legs_idx[:, None], first + hops_idx[:, None] + np.arange(width)].min(axis=1)
            nominal_row = np.asarray(ROW_HZ, np.float32)[rows_sel]
            nominal_col = np.asarray(COL_HZ, np.float32)[cols_sel]
            twist_db = 10 * np.log10(np.maximum(r_power, 1e-9) / np.maximum(c_power, 1e-9))
            # Leave out of the purity the low band's energy, up to twice what has lasted the whole last second:
            # a dial tone (steady, though two of them beat by ±25 %) is left out, a bass note that just began is not.
            excluded = np.minimum(low_power, 2.0 * steady[legs_idx])
            purity = (r_power + c_power) / np.maximum(total - excluded, 1e-9)
            looks = (
                (lowest >= cfg.cover_ratio * (r_power + c_power))
                & (r_power >= self._min_power)
                & (c_power >= self._min_power)
                & (twist_db <= cfg.max_normal_twist_db)
                & (twist_db >= -cfg.max_reverse_twist_db)
                & (purity >= cfg.min_purity)
                & (100.0 * np.abs(offsets[0]) / nominal_row <= cfg.max_offset_pct)
                & (100.0 * np.abs(offsets[1]) / nominal_col <= cfg.max_offset_pct)
            )
            candidate[legs_idx, hops_idx] = np.where(looks, rows_sel * 4 + cols_sel, -1)
            digit_power[legs_idx, hops_idx] = r_power + c_power
        else:
            last = spectrum.reshape(legs, hops, 2 * nt)[:, -1]
            self._prev = (last[:, :nt] + 1j * last[:, nt:]).astype(np.complex64)
        bins_seen = np.concatenate([self._bin_history, power], axis=1)
        self._bin_history = bins_seen[:, hops:].copy()
        return self._track(candidate, digit_power, hop_energy, bins_seen, hops)

    def _steady_low(self, last: npt.NDArray[np.float32], hops: int) -> npt.NDArray[np.float32]:
        """Per leg, the low-band power that has lasted the whole last second (minimum statistics over 8 blocks of
        ~125 ms, sampled on each call's last window): a dial tone does, a bass note does not."""
        low = last @ self._low_basis
        np.minimum(self._low_running, (low * low) @ self._low_weights, out=self._low_running)
        steady: npt.NDArray[np.float32] = np.minimum(self._low_blocks.min(axis=1), self._low_running)
        before = self._windows_seen // self._low_block_windows
        self._windows_seen += hops
        if self._windows_seen // self._low_block_windows != before:
            column = (self._windows_seen // self._low_block_windows) % self._low_blocks.shape[1]
            self._low_blocks[:, column] = self._low_running
            self._low_running[:] = np.inf
        return steady

    def _track(
        self,
        candidate: npt.NDArray[np.integer],
        digit_power: npt.NDArray[np.float32],
        hop_energy: npt.NDArray[np.float32],
        bins_seen: npt.NDArray[np.float32],
        hops: int,
    ) -> list[DigitEvent]:
        """The digit state machine, one window (= one hop) at a time, vectorised over the legs that have anything
        going on (a candidate now or before, or a digit sounding); the others stay as they are, idle."""
        cfg = self.config
        events: list[DigitEvent] = []
        busy = np.flatnonzero((candidate >= 0).any(axis=1) | (self._digit >= 0) | (self._candidate >= 0))
        if busy.size == 0:
            return events
        past = bins_seen.shape[1] - hops  # index in bins_seen of this call's first window
        run, run_start, last_cand = self._run[busy], self._run_start[busy], self._candidate[busy]
        digit, power, quiet, last_on = (
            self._digit[busy],
            self._digit_power[busy],
            self._quiet[busy],
            self._last_on[busy],
        )
        for h in range(hops):
            hop_end = self._position + (h + 1) * self.hop
            cand = candidate[busy, h]
            same = (cand >= 0) & (cand == last_cand)
            run = np.where(same, run + 1, (cand >= 0).astype(np.int32))
            run_start = np.where(same, run_start, hop_end - self.window)
            last_cand = cand
            active = digit >= 0
            # Is the sounding digit still there in this hop?
            on = active & (hop_energy[busy, h] >= cfg.hold_ratio * power)
            quiet = np.where(active & ~on, quiet + 1, 0)
            last_on = np.where(on, hop_end, last_on)
            confirmed = (run >= cfg.confirm_windows) & (cand >= 0)
            ended = active & ((quiet >= cfg.end_hops) | (confirmed & (cand != digit)))
            for i in np.flatnonzero(ended):
                self._last_on[busy[i]] = last_on[i]
                self._digit[busy[i]] = digit[i]
                self._finish(int(busy[i]), events)
                digit[i], quiet[i] = -1, 0
            for i in np.flatnonzero(confirmed & (digit < 0)):
                leg, new = int(busy[i]), int(cand[i])
                if not self._clean_onset(bins_seen[leg], past + h, int(run[i]), new):
                    continue
                digit[i], power[i], quiet[i], last_on[i] = new, digit_power[leg, h], 0, hop_end
                start = int(run_start[i])
                events.append(DigitEvent(leg, digit_at(new // 4, new % 4), start - int(self._origin[leg]), None))
                self._mutes[leg].append(_Mute(start - self._margin, None))
        self._run[busy], self._run_start[busy], self._candidate[busy] = run, run_start, last_cand
        self._digit[busy], self._digit_power[busy], self._quiet[busy], self._last_on[busy] = (
            digit,
            power,
            quiet,
            last_on,
        )
        return events

    def _clean_onset(self, bins: npt.NDArray[np.float32], index: int, run: int, digit: int) -> bool:
        """Both tones began together: neither sounded in the window just before the tone did. A keypad starts
        both at once; music rarely does — a note already held when the second one comes in is not a digit."""
        before = index - run + 1 - self._onset_lookback
        if before < 0:
            return True
        row, col = digit // 4, 4 + digit % 4
        ratio = self.config.onset_quiet_ratio
        return bool(bins[before, row] < ratio * bins[index, row] and bins[before, col] < ratio * bins[index, col])

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
