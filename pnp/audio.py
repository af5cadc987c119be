"""Reading recordings and conditioning them into a synth's format (sample rate, length, mono, level).

:func:`read_audio` reads a sound file with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3,
AIFF, ...) as float64 ``(frames, channels)``; :func:`condition` turns it into what a synth
renders, ``(N,)`` float64 at the synth's rate, in this order, each step stated in the returned
:class:`Conditioned` (``report`` and ``steps``):

1. **mono** — several channels are mixed to mono by their mean (``(L + R) / 2`` for stereo);
2. **resampling** — to the synth's rate with :func:`scipy.signal.resample_poly` (polyphase
   FIR low-pass: Kaiser window β = 5, ``20·max(up, down) + 1`` taps, cut-off at the lower of the
   two Nyquist frequencies; ``up / down`` the reduced ratio of the rates, :data:`RESAMPLER`);
3. **length** (``align``) — ``"start"``: a longer sound keeps its first N samples, a shorter one
   is zero-padded at the end (sounds that start at their first sample: the FTM drum);
   ``"centre"``: the middle N samples are kept, or zeros are added equally on both sides (sounds
   centred in their frame: the chirps); ``"loudest"``: the N consecutive samples of largest
   energy are kept (padding as ``"start"``).  :func:`synth_alignment` gives the synth's own;
4. **level** — ``"asis"`` keeps the amplitude; ``"peak"`` scales the sound to peak 1 (what a
   peak-normalising synth renders, e.g. the FTM drum: :func:`synth_level`).

Refused, with a one-line ``ValueError`` naming the file: an unsupported format, a corrupt or
truncated file, no samples, non-finite samples, silence (peak below :data:`SILENCE_DBFS` dBFS,
also after mixing to mono or trimming), and a sound shorter than :data:`MIN_FRACTION` of the
synth's length.  A missing file is ``FileNotFoundError``.  :func:`write_audio` writes float32 WAVs.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

#: the resampler, as stated in reports
RESAMPLER = ("scipy.signal.resample_poly: polyphase FIR low-pass, Kaiser window beta = 5, 20*max(up, down) + 1 taps, "
             "cut-off at the lower Nyquist frequency")
#: the mono rule, as stated in reports
MONO_RULE = "several channels are mixed to mono by their mean"
#: the length rules, as stated in reports
LENGTH_RULE = ("start: longer sounds keep their first N samples, shorter ones are zero-padded at the end; centre: "
               "longer sounds keep their middle N samples, shorter ones are zero-padded equally on both sides; loudest: "
               "longer sounds keep the N consecutive samples of largest energy, shorter ones are zero-padded at the end")
#: a sound whose peak is below this level (dBFS) is refused as silent
SILENCE_DBFS = -120.0
#: a sound shorter than this fraction of the synth's length (after resampling) is refused
MIN_FRACTION = 1.0 / 16.0
#: level rules
LEVELS = ("asis", "peak")
#: length rules: keep / pad from the start, around the centre, or keep the loudest window
ALIGNS = ("start", "centre", "loudest")
#: the largest reduced up / down factor resampled (the filter has 20 x that many taps)
MAX_RATIO_TERM = 100_000
#: file extensions soundfile reads (libsndfile's formats and their usual spellings)
EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".snd", ".caf",
              ".w64", ".rf64")


_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)


@dataclass
class Recording:
    """A sound file as read: ``audio`` (frames, channels) float64 in [-1, 1] for PCM files,
    ``sample_rate`` in Hz, the file's ``path``, ``format`` and ``subtype`` (libsndfile's names)."""

    audio: np.ndarray
    sample_rate: int
    path: str
    format: str = ""
    subtype: str = ""

    @property
    def channels(self) -> int:
        return int(self.audio.shape[1])

    @property
    def frames(self) -> int:
        return int(self.audio.shape[0])

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / self.sample_rate


@dataclass
class Conditioned:
    """A recording conditioned into a synth's format: ``audio`` (N,) float64 at ``sample_rate``;
    ``report`` (JSON-able: what was read, what was done) and ``steps`` (one sentence per
    adaptation made, empty when the file was already in the synth's format)."""

    audio: np.ndarray
    sample_rate: float
    report: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)


def read_audio(path: str | os.PathLike) -> Recording:
    """Read ``path`` with soundfile as float64 (frames, channels); see the module docs for the
    errors (one line each, naming the file)."""
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"audio file {path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"audio file {path}: is a directory, expected a sound file")
    ext = os.path.splitext(path)[1].lower()
    try:
        with sf.SoundFile(path) as f:
            fmt, subtype, rate = f.format, f.subtype, int(f.samplerate)
            data = f.read(dtype="float64", always_2d=True)
            log = f.extra_info
    except (sf.LibsndfileError, RuntimeError, EOFError) as err:
        reason = " ".join(str(err).split())
        if ext not in EXTENSIONS:
            raise ValueError(f"audio file {path}: unsupported format {ext or '(no extension)'!r}; pnp reads WAV, FLAC, "
                             "OGG, MP3, AIFF, AU, CAF, W64 and RF64 files (libsndfile)") from None
        raise ValueError(f"audio file {path}: not a readable {ext[1:].upper()} file (corrupt or truncated?): "
                         f"{reason}") from None
    _check_complete(log, path)
    rec = Recording(np.ascontiguousarray(data), rate, path, fmt, subtype)
    if rec.frames == 0:
        raise ValueError(f"audio file {path}: holds no samples")
    if not np.all(np.isfinite(rec.audio)):
        raise ValueError(f"audio file {path}: holds non-finite samples (NaN or infinity)")
    _check_not_silent(rec.audio, path, "")
    return rec


def _check_complete(log: str, path: str) -> None:
    """``ValueError`` when libsndfile's log says the data chunk is shorter than its header
    declares (a truncated WAV, which libsndfile would read in part without an error); the
    streaming placeholders (sizes >= 2**31 - 1) are not counted as truncation."""
    m = _DATA_CHUNK.search(log or "")
    if m and int(m.group(2)) < int(m.group(1)) < 2**31 - 1:
        raise ValueError(f"audio file {path}: truncated (its header declares {m.group(1)} bytes of samples, the file "
                         f"holds {m.group(2)})")


def _check_not_silent(x: np.ndarray, path: str, when: str) -> None:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak < 10.0 ** (SILENCE_DBFS / 20.0):
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.0f}"
        raise ValueError(f"audio file {path}: silent{when} (peak {level} dBFS, below {SILENCE_DBFS:g} dBFS): "
                         "nothing to analyse")


def to_mono(x: np.ndarray) -> np.ndarray:
    """``x`` (frames, channels) → (frames,) float64, the mean of the channels."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return x
    return x[:, 0].copy() if x.shape[1] == 1 else x.mean(axis=1)


def resample_ratio(source: float, target: float) -> tuple[int, int]:
    """``(up, down)``, the reduced ratio ``target / source`` of two sample rates (Hz);
    ``ValueError`` when it has a term above :data:`MAX_RATIO_TERM`."""
    ratio = Fraction(target).limit_denominator(10**6) / Fraction(source).limit_denominator(10**6)
    up, down = ratio.numerator, ratio.denominator
    if max(up, down) > MAX_RATIO_TERM:
        raise ValueError(f"cannot resample {source:g} Hz to {target:g} Hz: the reduced ratio {up}/{down} needs a "
                         f"filter of more than {20 * MAX_RATIO_TERM} taps; convert the file to a common rate first")
    return up, down


def resample(x: np.ndarray, source: float, target: float) -> np.ndarray:
    """``x`` (n,) float64 at ``source`` Hz → (ceil(n · up / down),) at ``target`` Hz with
    :func:`scipy.signal.resample_poly` (:data:`RESAMPLER`); ``x`` itself when the rates are equal."""
    from scipy.signal import resample_poly

    up, down = resample_ratio(source, target)
    if up == down:
        return np.asarray(x, dtype=np.float64)
    return np.asarray(resample_poly(np.asarray(x, dtype=np.float64), up, down), dtype=np.float64)


def fit_length(x: np.ndarray, n: int, align: str = "start") -> tuple[np.ndarray, int, int, int]:
    """``x`` (m,) → ``(y (n,), padded, trimmed, start)`` under ``align`` (:data:`ALIGNS`, module
    docs): ``padded`` / ``trimmed`` count the samples added / removed, ``start`` is the index in
    ``x`` of ``y[0]`` (negative when zeros were put before the sound)."""
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    x = np.asarray(x, dtype=np.float64)
    m = int(x.shape[0])
    if m >= n:
        if align == "start" or m == n:
            start = 0
        elif align == "centre":
            start = (m - n) // 2
        else:  # the loudest window: the largest sum of n consecutive squared samples
            energy = np.concatenate([[0.0], np.cumsum(x**2)])
            start = int(np.argmax(energy[n:] - energy[:-n]))
        return x[start:start + n].copy(), 0, m - n, start
    before = (n - m) // 2 if align == "centre" else 0
    return np.concatenate([np.zeros(before), x, np.zeros(n - m - before)]), n - m, 0, -before


def synth_alignment(synth: Any) -> str:
    """``"centre"`` for synths whose sound is centred in its frame (the chirps: t = 0 at the middle),
    ``"start"`` for the others (the FTM drum starts at its first sample)."""
    return "centre" if getattr(synth, "name", "") in ("amchirp", "arpeggio") else "start"


def synth_level(synth: Any) -> str:
    """``"peak"`` for a synth that peak-normalises its sounds (``normalize`` true: the FTM
    drum), ``"asis"`` otherwise (the chirps' amplitude is part of the sound)."""
    return "peak" if bool(getattr(synth, "normalize", False)) else "asis"


def condition(rec: Recording, sample_rate: float, n_samples: int, level: str = "asis", align: str = "start",
              min_fraction: float = MIN_FRACTION) -> Conditioned:
    """``rec`` → :class:`Conditioned` at ``sample_rate`` Hz, ``n_samples`` long (module docs)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")
    path, steps = rec.path, []
    x = to_mono(rec.audio)
    if rec.channels > 1:
        steps.append(f"mixed {rec.channels} channels to mono (mean)")
        _check_not_silent(x, path, f" after mixing its {rec.channels} channels to mono")
    if not math.isclose(rec.sample_rate, sample_rate, rel_tol=0, abs_tol=1e-9):
        up, down = resample_ratio(rec.sample_rate, sample_rate)
        x = resample(x, rec.sample_rate, sample_rate)
        steps.append(f"resampled {rec.sample_rate:g} Hz -> {sample_rate:g} Hz (resample_poly, up {up} / down {down}, "
                     "Kaiser beta 5)")
    shortest = int(math.ceil(min_fraction * n_samples))
    if x.shape[0] < shortest:
        raise ValueError(f"audio file {path}: too short ({rec.duration:.4g} s); the synth's sounds last "
                         f"{n_samples / sample_rate:.4g} s and at least {min_fraction:g} of that "
                         f"({shortest / sample_rate:.4g} s) is needed (shorter sounds are zero-padded)")
    x, padded, trimmed, start = fit_length(x, n_samples, align)
    steps.extend(_length_steps(padded, trimmed, start, n_samples, sample_rate, align))
    if trimmed:
        _check_not_silent(x, path, " in the part kept")
    gain = 1.0
    if level == "peak":
        gain = 1.0 / float(np.max(np.abs(x)))
        x = x * gain
        if gain != 1.0:
            steps.append(f"peak-normalised (gain {20 * math.log10(gain):+.2f} dB)")
    report = {
        "path": path, "format": rec.format, "subtype": rec.subtype, "sample_rate_in": rec.sample_rate,
        "channels_in": rec.channels, "frames_in": rec.frames, "duration_in_s": rec.duration,
        "sample_rate": float(sample_rate), "n_samples": int(n_samples),
        "mono": "mean of channels" if rec.channels > 1 else "already mono",
        "resampled": rec.sample_rate != sample_rate, "align": align, "padded_samples": padded,
        "trimmed_samples": trimmed, "start_sample": start, "level": level, "gain": gain, "steps": list(steps),
    }
    return Conditioned(x, float(sample_rate), report, steps)


def _length_steps(padded: int, trimmed: int, start: int, n: int, sr: float, align: str) -> list[str]:
    """The sentence stating what :func:`fit_length` did (none when nothing)."""
    if padded:
        where = "at the end" if start == 0 else f"({-start} before, {padded + start} after)"
        return [f"zero-padded {padded} samples {where} ({padded / sr:.4g} s)"]
    if trimmed:
        which = {"start": "the first", "centre": "the middle", "loudest": "the loudest"}[align]
        return [f"trimmed {trimmed} samples ({trimmed / sr:.4g} s): kept {which} {n / sr:.4g} s, samples {start} to "
                f"{start + n - 1} (at the resampled rate)"]
    return []


def load(path: str | os.PathLike, sample_rate: float, n_samples: int, level: str = "asis",
         align: str = "start") -> Conditioned:
    """:func:`read_audio` then :func:`condition`."""
    return condition(read_audio(path), sample_rate, n_samples, level, align)


def write_audio(path: str | os.PathLike, audio: Any, sample_rate: float) -> None:
    """Mono ``audio`` (N,) as a float32 WAV at ``round(sample_rate)`` Hz, written atomically."""
    import soundfile as sf

    from pnp.files import atomic_write

    data = np.asarray(audio, dtype=np.float32).reshape(-1)
    atomic_write(path, lambda tmp: sf.write(tmp, data, int(round(sample_rate)), subtype="FLOAT", format="WAV"))


def write_wav(path: str, audio: np.ndarray, sample_rate: int, fmt: str = "pcm16") -> float:
    """Write mono ``audio`` (N,) to ``path``; returns the gain applied (1 unless normalised)."""
    from scipy.io import wavfile

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    gain = 1.0
    if fmt == "pcm16":
        if peak > 1.0:
            gain = 1.0 / peak
        data = np.round(np.clip(audio * gain, -1.0, 1.0) * 32767.0).astype(np.int16)
    else:
        data = audio.astype(np.float32)
    wavfile.write(path, int(sample_rate), data)
    return gain


def conditioning_rules() -> dict[str, str]:
    """The rules every report states (JSON-able)."""
    return {"mono": MONO_RULE, "resampler": RESAMPLER, "length": LENGTH_RULE,
            "level": "asis: amplitude kept; peak: scaled to peak 1 (synths that peak-normalise, e.g. ftm)",
            "silence": f"refused below {SILENCE_DBFS:g} dBFS peak",
            "too_short": f"refused below {MIN_FRACTION:g} of the synth's length"}


__all__ = ["write_wav", "ALIGNS", "Conditioned", "EXTENSIONS", "LEVELS", "MIN_FRACTION", "Recording", "RESAMPLER", "SILENCE_DBFS", "condition",
           "conditioning_rules", "fit_length", "load", "read_audio", "resample", "resample_ratio", "synth_alignment",
           "synth_level", "to_mono", "write_audio"]
