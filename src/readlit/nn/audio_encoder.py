"""The audio encoder of the A2V stage: Whisper windows S (B, F, Hw, Da) -> audio latents C (B, f, hw, da).

One factory for training and inference. ``mode`` picks the paper's variant:

- ``speechae``: the stage-1 SpeechAE encoder (the paper; trained in stage 1, frozen in stage 2);
- ``speechae_tuned``: the stage-1 SpeechAE encoder, trained on with the DiT in stage 2 (not in the paper: on the
  synthetic data the frozen code hides the loudness the mouth follows, ``experiments/table2_ablation``);
- ``speechae_scratch``: a fresh SpeechAE encoder trained jointly with the DiT (ablation "w/o pre-training");
- ``linear``: no SpeechAE, the raw windows of a latent frame through one linear map (ablation "w/o SpeechAE").
"""

from __future__ import annotations

from typing import Any

from torch import nn

from readlit.errors import ConfigError
from readlit.nn.audio_projection import RawWindowProjection
from readlit.nn.speech_ae import SpeechAE

AUDIO_ENCODERS = ("speechae", "speechae_tuned", "speechae_scratch", "linear")
# The modes that start from a stage-1 checkpoint.
PRETRAINED = ("speechae", "speechae_tuned")
# The arguments of RawWindowProjection that a SpeechAE config also names.
_LINEAR_KEYS = ("in_tokens", "in_dim", "latent_tokens", "latent_dim")


def audio_encoder_config(mode: str, sizes: dict[str, Any]) -> dict[str, Any]:
    """``{"mode": mode, **arguments}`` for :func:`build_audio_encoder`, from SpeechAE-style ``sizes``."""
    if mode not in AUDIO_ENCODERS:
        raise ConfigError(f"audio_encoder={mode} is not one of {AUDIO_ENCODERS}")
    if mode == "linear":
        missing = [k for k in _LINEAR_KEYS if k not in sizes]
        if missing:
            raise ConfigError(f"audio_encoder=linear needs the sizes {missing}")
        return {"mode": mode, **{k: sizes[k] for k in _LINEAR_KEYS}, "ratio": 2 ** sizes.get("num_down", 3)}
    return {"mode": mode, **sizes}


def build_audio_encoder(config: dict[str, Any]) -> nn.Module:
    """A freshly initialised audio encoder from :func:`audio_encoder_config`'s output (weights loaded by callers)."""
    arguments = dict(config)
    mode = arguments.pop("mode")
    if mode == "linear":
        return RawWindowProjection(**arguments)
    return SpeechAE(**arguments).encoder
