"""MFCC exactly as SyncNet's reference pipeline computes it (python_speech_features 0.6 ``mfcc`` defaults).

Provenance
    Paper: none of its own; SyncNet (Chung & Zisserman 2016) scores on these features.
    Original: python_speech_features 0.6 ``base.py`` (``mfcc``, ``fbank``, ``get_filterbanks``, ``lifter``)
    and ``sigproc.py`` (``framesig``, ``preemphasis``, ``powspec``), as joonson/syncnet_python
    ``SyncNetInstance.py`` calls it on ``scipy.io.wavfile.read`` samples. No weights.
    Checked: tests write python_speech_features' ``mfcc`` out loop by loop (filterbank, DCT-II, lifter, energy)
    and agree to 1e-9 on a modulated tone with noise; :func:`to_int16_scale` gives FFmpeg's s16 values at
    0, 0.5, −1 and 1.

syncnet_python reads 16 kHz int16 PCM without rescaling and calls ``python_speech_features.mfcc(audio, 16000)``:
25 ms frames (400 samples) every 10 ms (100 Hz), rectangular window, pre-emphasis 0.97, |rfft|²/512 power
spectrum, 26 triangular mel filters from 0 Hz to 8 kHz on FFT bins ``floor(513·f/sr)``, log, orthonormal
DCT-II kept to 13 coefficients, sinusoidal lifter 22, and C0 replaced by the log frame energy. Because C0 is
a log energy, the amplitude scale matters: pass int16-scaled samples (:func:`to_int16_scale`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

SAMPLE_RATE = 16000
WIN_LENGTH = 400  # 0.025 s
HOP_LENGTH = 160  # 0.01 s -> 100 MFCC frames per second, 4 per 25 fps video frame
N_FFT = 512
N_FILTERS = 26
N_CEPSTRA = 13
PREEMPHASIS = 0.97
LIFTER = 22
_EPS = np.finfo(float).eps


def to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> float64 values an int16 WAV would hold (FFmpeg's s16 conversion: ×32768)."""
    return np.clip(np.rint(np.asarray(audio, np.float64) * 32768.0), -32768, 32767)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(26, 257) triangular filters on integer FFT bins, rising from bin[j] and falling to bin[j+2]."""
    mels = np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2), N_FILTERS + 2)
    bins = np.floor((N_FFT + 1) * mel_to_hz(mels) / sample_rate)
    k = np.arange(N_FFT // 2 + 1)[None]
    lo, mid, hi = bins[:-2, None], bins[1:-1, None], bins[2:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = np.where((k >= lo) & (k < mid), (k - lo) / (mid - lo), 0.0)
        falling = np.where((k >= mid) & (k < hi), (hi - k) / (hi - mid), 0.0)
    return rising + falling


def frame_signal(signal: np.ndarray) -> np.ndarray:
    """(n,) -> (frames, 400): 1 + ceil((n − 400)/160) frames, the last zero-padded (one frame if n <= 400)."""
    count = 1 if len(signal) <= WIN_LENGTH else 1 + math.ceil((len(signal) - WIN_LENGTH) / HOP_LENGTH)
    padded = np.concatenate([signal, np.zeros((count - 1) * HOP_LENGTH + WIN_LENGTH - len(signal))])
    index = np.arange(count)[:, None] * HOP_LENGTH + np.arange(WIN_LENGTH)[None]
    return padded[index]


def mfcc(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n,) samples (int16 scale) -> (frames, 13) MFCC at 100 Hz, float64."""
    signal = np.asarray(signal, np.float64)
    emphasised = np.append(signal[0], signal[1:] - PREEMPHASIS * signal[:-1])
    power = np.abs(np.fft.rfft(frame_signal(emphasised), N_FFT)) ** 2 / N_FFT
    energy = power.sum(1)
    energy = np.where(energy == 0, _EPS, energy)
    mel = power @ mel_filterbank(sample_rate).T
    mel = np.where(mel == 0, _EPS, mel)
    cepstra = scipy.fft.dct(np.log(mel), type=2, axis=1, norm="ortho")[:, :N_CEPSTRA]
    cepstra = cepstra * (1.0 + (LIFTER / 2.0) * np.sin(np.pi * np.arange(N_CEPSTRA) / LIFTER))
    cepstra[:, 0] = np.log(energy)
    return cepstra
