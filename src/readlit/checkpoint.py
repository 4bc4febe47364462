"""What a readlit checkpoint says about itself: which stage wrote it, and what inference needs to rebuild it.

A Lightning checkpoint of a readlit stage carries a header under ``checkpoint["readlit"]``. For the A2V stage the
header is typed (:class:`A2VHeader`): the A2V-DiT and audio-encoder arguments, the clip the model was trained on,
and *references* to the frozen codecs (the video VAE and the Whisper front end): the arguments that rebuild each
(a Hugging Face id, a local folder, or an explicit random architecture and seed) and a fingerprint of its
weights. The codecs' weights are not stored: the LTX VAE alone would add 1.7 GB to every checkpoint of a
paper-scale run. Loading rebuilds each codec from its reference and refuses one whose weights differ.

Format 1 (before the header was typed) embedded the VAE's weights; :func:`upgrade` converts such a checkpoint:
``python -m readlit.checkpoint upgrade OLD.ckpt NEW.ckpt --vae-dir DIR``. Nothing here imports Lightning.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from readlit.errors import CheckpointError

KEY = "readlit"
# The header format of a2v checkpoints: 2 = codecs by reference (this module); 1 = VAE weights inside.
A2V_FORMAT = 2
# The EMA callback's weights: the trainable parameters' names as in ``state_dict``.
EMA_KEY = "ema_state_dict"


def load_checkpoint(path: str | Path, stage: str | None = None, key: str = "ckpt_path") -> dict[str, Any]:
    """Load a readlit checkpoint safely (``weights_only=True``) and check which stage wrote it.

    Args:
        path: the ``.ckpt`` file.
        stage: the stage it must come from, or None to accept any readlit checkpoint.
        key: the config key that named the path, quoted in error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{key}={path}: no such checkpoint file")
    try:
        # mmap: checking a stage or reading a header must not read a paper-scale checkpoint (38 GB) into memory
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"{key}={path}: not a readable checkpoint ({type(err).__name__})") from err
    found = checkpoint.get(KEY, {}).get("stage") if isinstance(checkpoint, dict) else None
    if found is None:
        raise CheckpointError(f"{key}={path}: not a readlit checkpoint (no '{KEY}' entry)")
    if stage is not None and found != stage:
        raise CheckpointError(f"{key}={path} is a '{found}' checkpoint; a '{stage}' checkpoint is needed here")
    return checkpoint


def tag_checkpoint(checkpoint: dict[str, Any], stage: str, **info: Any) -> None:
    """Record the stage and plain-typed facts (e.g. the net's config) in a Lightning checkpoint dict."""
    checkpoint[KEY] = {"stage": stage, **info}


@dataclass(frozen=True)
class CodecRef:
    """A frozen codec by reference: the constructor arguments that rebuild it and a fingerprint of its weights."""

    kwargs: dict[str, Any]
    fingerprint: str

    def check(self, built: torch.nn.Module, name: str, fingerprint: str) -> None:
        """Refuse ``built`` (whose weights hash to ``fingerprint``) unless it is the codec the model was trained on."""
        if fingerprint != self.fingerprint:
            raise CheckpointError(
                f"the {name} built from {_where(self.kwargs)} is not the one this checkpoint was trained with "
                f"(weights fingerprint {fingerprint[:12]} here, {self.fingerprint[:12]} in training)"
            )


@dataclass(frozen=True)
class A2VHeader:
    """Everything inference needs from an a2v checkpoint besides the trained weights.

    Args:
        net_config: the :class:`~readlit.nn.a2v_dit.A2VDiT` arguments.
        audio_config: the audio encoder (:func:`~readlit.nn.audio_encoder.build_audio_encoder`): mode and sizes.
        frontend: the Whisper front end (:class:`~readlit.audio.WhisperFrontEnd`).
        vae: the video VAE (:class:`~readlit.vae.VideoVAE`).
        clip_frames: latent frames per training clip after the reference (the sampler's default clip length).
        size: pixel size of the square training frames.
        time_shift: the training times' shift rule (:class:`~readlit.flow.schedule.TimeShift` arguments), which
            the sampler shares.
    """

    net_config: dict[str, Any]
    audio_config: dict[str, Any]
    frontend: CodecRef
    vae: CodecRef
    clip_frames: int | None
    size: int | None
    time_shift: dict[str, Any]
    stage: str = "a2v"
    format: int = A2V_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any], path: str | Path, key: str = "ckpt") -> A2VHeader:
        """The header of a loaded a2v checkpoint; CheckpointError for an old format or a header that is not one."""
        tag = checkpoint[KEY]
        if tag.get("format") != A2V_FORMAT:
            raise CheckpointError(
                f"{key}={path} is an a2v checkpoint of format {tag.get('format', 1)} (VAE weights inside); this "
                f"readlit reads format {A2V_FORMAT}: convert it once with python -m readlit.checkpoint upgrade "
                f"{path} NEW.ckpt --vae-dir DIR"
            )
        fields = {f.name for f in dataclasses.fields(cls)}
        if set(tag) != fields:
            raise CheckpointError(f"{key}={path}: its a2v header has keys {sorted(tag)}, expected {sorted(fields)}")
        return cls(**{**tag, "frontend": CodecRef(**tag["frontend"]), "vae": CodecRef(**tag["vae"])})


def trained_state(checkpoint: dict[str, Any], ema: bool) -> tuple[dict[str, torch.Tensor], bool]:
    """The checkpoint's module weights, with the EMA weights in place of the live ones when ``ema`` and present."""
    state = dict(checkpoint["state_dict"])
    averaged = checkpoint.get(EMA_KEY) if ema else None
    if averaged:
        unknown = sorted(set(averaged) - set(state))
        if unknown:
            raise CheckpointError(f"the checkpoint's EMA weights name parameters it does not have, e.g. {unknown[0]}")
        state.update(averaged)
    return state, bool(averaged)


def submodule_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state`` under ``prefix.``, with the prefix removed."""
    head = f"{prefix}."
    return {k.removeprefix(head): v for k, v in state.items() if k.startswith(head)}


def _where(kwargs: dict[str, Any]) -> str:
    """Where a codec's weights come from, for messages."""
    if kwargs.get("pretrained"):
        sub = kwargs.get("subfolder")
        return f"{kwargs['pretrained']}" + (f" (subfolder {sub})" if sub else "")
    return f"a random architecture with seed {kwargs.get('seed')}"


def upgrade(old: str | Path, new: str | Path, vae_dir: str | Path, time_shift: dict[str, Any]) -> A2VHeader:
    """Convert a format-1 a2v checkpoint: its VAE goes to ``vae_dir`` (save_pretrained), the rest to ``new``.

    Format 1 did not record the training shift; ``time_shift`` gives it (the TimeShift arguments of the run's
    ``model.ans.shift``, e.g. ``{"mu": None}`` for LTX's token-count rule).
    """
    from readlit.audio import WhisperFrontEnd
    from readlit.utils.atomic import atomic_write_bytes
    from readlit.vae import VideoVAE

    if Path(new).expanduser().resolve() == Path(old).expanduser().resolve():
        raise CheckpointError(f"NEW={new} is OLD: the conversion would replace the checkpoint it reads; give another "
                              "NEW")
    if Path(new).expanduser().exists():
        raise CheckpointError(f"NEW={new} exists; give a NEW that does not (nothing is written over)")
    checkpoint = load_checkpoint(old, stage="a2v", key="OLD")
    tag = checkpoint[KEY]
    if tag.get("format") == A2V_FORMAT:
        raise CheckpointError(f"{old} is already of format {A2V_FORMAT}")
    if tag.get("frontend") is None or tag.get("vae_config") is None:
        raise CheckpointError(f"{old}: its header records no audio front end or VAE; it cannot be converted")
    vae = VideoVAE(architecture=tag["vae_config"], **tag["vae_settings"])
    vae.load_state_dict(submodule_state(checkpoint["state_dict"], "vae"))
    vae.save_pretrained(vae_dir)
    vae = VideoVAE(pretrained=str(Path(vae_dir).resolve()), **tag["vae_settings"])
    frontend = WhisperFrontEnd(**{k: v for k, v in tag["frontend"].items() if not k.startswith("_")})
    header = A2VHeader(net_config=tag["net_config"], audio_config=tag["audio_config"],
                       frontend=CodecRef(frontend.reference(), frontend.fingerprint()),
                       vae=CodecRef(vae.reference(), vae.fingerprint()), clip_frames=tag["clip_frames"],
                       size=tag["size"], time_shift=time_shift)
    state = checkpoint["state_dict"]
    checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.startswith(("vae.", "ema."))}
    averaged = submodule_state(state, "ema")
    if averaged:
        checkpoint[EMA_KEY] = averaged
    checkpoint[KEY] = header.to_dict()
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    atomic_write_bytes(new, buffer.getvalue())
    return header


def main(argv: list[str] | None = None) -> None:
    """Inspect or convert readlit checkpoints."""
    from readlit.cli import run_tool

    parser = argparse.ArgumentParser(prog="python -m readlit.checkpoint", description=main.__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    info = verbs.add_parser("info", help="print the header of a checkpoint")
    info.add_argument("ckpt")
    convert = verbs.add_parser("upgrade", help="convert a format-1 a2v checkpoint (VAE weights inside)")
    convert.add_argument("old")
    convert.add_argument("new")
    convert.add_argument("--vae-dir", required=True, help="folder to save the checkpoint's VAE into")
    convert.add_argument("--mu", default=None, help="the run's fixed training shift model.ans.mu (default: LTX's "
                         "token-count rule, model.ans.mu=null)")
    args = parser.parse_args(argv)

    def run() -> None:
        if args.verb == "info":
            print(json.dumps(load_checkpoint(args.ckpt, key="ckpt")[KEY], indent=2, default=str))
        else:
            upgrade(args.old, args.new, args.vae_dir, {"mu": None if args.mu is None else float(args.mu)})
            print(f"wrote {args.new} (VAE in {args.vae_dir})")

    run_tool(run)


if __name__ == "__main__":
    main()
