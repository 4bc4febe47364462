"""MFCC as python_speech_features 0.6 computes it, and the int16 scale SyncNet's pipeline feeds it."""

import math

import numpy as np

from readlit.eval.networks import mfcc as M


def _reference_mfcc(signal: np.ndarray, sr: int = 16000) -> np.ndarray:
    """python_speech_features 0.6 ``mfcc(signal, sr)`` written out literally, loop by loop."""
    signal = np.concatenate([[signal[0]], signal[1:] - 0.97 * signal[:-1]])
    n = 1 if len(signal) <= 400 else 1 + int(math.ceil((len(signal) - 400) / 160))
    signal = np.concatenate([signal, np.zeros((n - 1) * 160 + 400 - len(signal))])
    frames = np.stack([signal[i * 160:i * 160 + 400] for i in range(n)])
    pspec = np.abs(np.fft.rfft(frames, 512)) ** 2 / 512
    energy = pspec.sum(1)
    lowmel, highmel = 2595 * np.log10(1 + 0 / 700), 2595 * np.log10(1 + (sr / 2) / 700)
    melpoints = np.linspace(lowmel, highmel, 28)
    bins = np.floor(513 * (700 * (10 ** (melpoints / 2595) - 1)) / sr)
    fb = np.zeros((26, 257))
    for j in range(26):
        for i in range(int(bins[j]), int(bins[j + 1])):
            fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
        for i in range(int(bins[j + 1]), int(bins[j + 2])):
            fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
    logmel = np.log(pspec @ fb.T)
    k = np.arange(26)
    out = np.zeros((n, 13))
    for c in range(13):  # DCT-II, orthonormal
        scale = np.sqrt(1 / 26) if c == 0 else np.sqrt(2 / 26)
        out[:, c] = scale * (logmel * np.cos(np.pi * c * (2 * k + 1) / 52)).sum(1)
    out *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    out[:, 0] = np.log(energy)
    return out


def test_mfcc_matches_reference_formula():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 0.73) / 16000
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)
    signal = M.to_int16_scale(audio)
    ours = M.mfcc(signal)
    assert ours.shape == (1 + math.ceil((len(signal) - 400) / 160), 13)
    np.testing.assert_allclose(ours, _reference_mfcc(signal), rtol=1e-9, atol=1e-9)


def test_int16_scale_is_ffmpeg_s16():
    np.testing.assert_array_equal(M.to_int16_scale(np.array([0.0, 0.5, -1.0, 1.0])), [0, 16384, -32768, 32767])
