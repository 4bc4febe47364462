"""Does a trained VAE keep what talking heads need? PSNR and mouth opening after an encode/decode round trip.

    python -m readlit.eval.synthetic.vae_roundtrip logs/demo/vae   (a vae-stage run folder on synthetic data)

Reconstructs every held-out (test) clip of the run's synthetic data through the public path later stages use
(normalised ``encode`` -> tiled ``decode``), and measures the mouth opening from pixels
(:func:`readlit.eval.synthetic.mouth_sync.mouth_opening`) on the input and on the reconstruction. Correlations
are taken per identity over all its clips (an identity's mouth size scales the measure), then averaged. Writes
``roundtrip.json`` into the run folder.

It also reports what the VAE's temporal compression alone allows: the correlation of the true opening with
itself held at each latent frame's mean (``mouth_corr_latent_mean``). A VAE whose latents carry one opening
per latent frame can reach no more; when the mouth moves within a latent frame's span (syllables are shorter
than 8 frames at 25 fps), correlations above it need the latents to keep the motion inside each span.

Clips are short; generation decodes one long latent sequence. So it also encodes and decodes every held-out
session whole (``psnr_session``, ``mouth_corr_session``): a causal VAE trained on short windows sees its later
latent frames out of context there (assets/demo_vae_mouth keeps r 0.48 on 17-frame clips and 0.12 on sessions).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from readlit.cli import fail
from readlit.data.base import to_video
from readlit.data.synthetic import render_frames
from readlit.data.synthetic_datamodule import SyntheticTalkingHeads
from readlit.errors import ConfigError, ReadlitError
from readlit.eval.synthetic.mouth_sync import mouth_opening, pearson
from readlit.utils.atomic import atomic_write_text
from readlit.vae import VideoVAE


def hold_latent_means(series: np.ndarray, ratio: int) -> np.ndarray:
    """(F,) per-frame values, F = 1 + ratio·k -> each latent frame's span set to its mean, same shape.

    The spans of a causal video VAE: frame 0 alone, then ``ratio`` frames per latent frame.
    """
    if series.ndim != 1 or (len(series) - 1) % ratio:
        raise ValueError(f"need a 1-D series of 1 + {ratio}k frames, got shape {series.shape}")
    means = rearrange(series[1:], "(k r) -> k r", r=ratio).mean(axis=1)
    return np.concatenate([series[:1], np.repeat(means, ratio)])


def clip_psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) per clip of two videos (B, 3, F, H, W) in [-1, 1], on [0, 1] pixels."""
    unit = [((v + 1) / 2).clamp(0, 1) for v in (x, y)]
    mse = (unit[0] - unit[1]).square().flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


def _check_rendered(dataset: SyntheticTalkingHeads) -> None:
    if not dataset.return_video:
        raise ConfigError("the round trip needs rendered clips: build the dataset with return_video=true")


@torch.no_grad()
def roundtrip(vae: VideoVAE, dataset: SyntheticTalkingHeads, batch_size: int = 4,
              progress: bool = True) -> dict[str, Any]:
    """PSNR and mouth-opening correlations of ``dataset``'s clips through ``vae``.

    Returns:
        ``psnr`` (dB, mean over clips), ``mouth_corr`` (true opening vs opening measured on reconstructions),
        ``mouth_corr_input`` (true vs measured on the inputs: the measure's own ceiling), ``mouth_corr_io``
        (measured on inputs vs on reconstructions), ``mouth_corr_latent_mean`` (true vs true held at each latent
        frame's mean: the most a latent with one opening per latent frame allows), each the mean over
        identities, plus per-identity values.
    """
    _check_rendered(dataset)
    psnr: list[float] = []
    series: dict[str, dict[str, list[np.ndarray]]] = {}
    index = 0
    for batch in tqdm(DataLoader(dataset, batch_size=batch_size), desc="round trip", disable=not progress):
        video = batch["video"]
        recon = vae.decode(vae.encode(video))
        psnr += clip_psnr(recon, video).tolist()
        for row in range(video.shape[0]):
            face = dataset.identity(index)
            name = batch["clip_id"][row].split("_")[0]
            per = series.setdefault(name, {"true": [], "input": [], "recon": [], "held": []})
            per["true"].append(batch["mouth_open"][row].numpy())
            per["held"].append(hold_latent_means(per["true"][-1], vae.temporal_ratio))
            per["input"].append(mouth_opening(video[row], face).numpy())
            per["recon"].append(mouth_opening(recon[row], face).numpy())
            index += 1
    identities = {name: {pair: pearson(np.concatenate(per[a]), np.concatenate(per[b]))
                         for pair, (a, b) in {"mouth_corr": ("true", "recon"), "mouth_corr_input": ("true", "input"),
                                              "mouth_corr_io": ("input", "recon"),
                                              "mouth_corr_latent_mean": ("true", "held")}.items()}
                  for name, per in series.items()}
    means = {key: float(np.mean([values[key] for values in identities.values()]))
             for key in ("mouth_corr", "mouth_corr_input", "mouth_corr_io", "mouth_corr_latent_mean")}
    return {"psnr": float(np.mean(psnr)), **means, "clips": len(psnr), "identities": identities}


@torch.no_grad()
def session_roundtrip(vae: VideoVAE, dataset: SyntheticTalkingHeads, progress: bool = True) -> dict[str, Any]:
    """PSNR and mouth correlation of ``dataset``'s whole sessions, each encoded and decoded in one piece.

    Generation decodes one long latent sequence, whose later latent frames have earlier ones as causal context;
    a VAE trained on short windows can keep the mouth in short clips and lose it there.

    Returns:
        ``psnr_session`` (dB) and ``mouth_corr_session`` (true vs reconstructed opening per session), each the
        mean over sessions, ``session_frames`` (each session cut to its longest 1 + 8k prefix) and ``sessions``.
    """
    _check_rendered(dataset)
    psnr, corr = [], []
    for face, session in tqdm(list(zip(dataset.faces, dataset.sessions, strict=True)), desc="whole sessions",
                              disable=not progress):
        frames = 1 + vae.temporal_ratio * ((len(session.mouth_open) - 1) // vae.temporal_ratio)
        video = to_video(render_frames(face, session, 0, frames, dataset.size)).unsqueeze(0)
        recon = vae.decode(vae.encode(video))
        psnr.append(float(clip_psnr(recon, video)[0]))
        corr.append(pearson(session.mouth_open[:frames], mouth_opening(recon[0], face)))
    return {"psnr_session": float(np.mean(psnr)), "mouth_corr_session": float(np.mean(corr)),
            "session_frames": frames, "sessions": len(corr)}


def run_roundtrip(run_dir: Path, split: str = "test", progress: bool = True) -> dict[str, Any]:
    """Round trip of a vae-stage run's exported VAE on its data's ``split``; writes ``<run>/roundtrip.json``."""
    config, export = run_dir / ".hydra" / "config.yaml", run_dir / "vae"
    if not config.is_file() or not export.is_dir():
        raise ConfigError(f"{run_dir} is not a finished vae-stage run (needs .hydra/config.yaml and vae/)")
    cfg = OmegaConf.load(config)
    if not str(cfg.data.get("_target_", "")).endswith("SyntheticDataModule"):
        raise ConfigError(f"{run_dir} was trained on {cfg.data.get('_target_')}; the mouth measure needs the "
                          "synthetic data, whose faces are known")
    data_cfg = OmegaConf.merge(cfg.data, {"return_video": True, "audio_frontend": None, "latents": None})
    datamodule = instantiate(data_cfg)
    datamodule.setup("test" if split == "test" else None)
    vae = VideoVAE(pretrained=str(export))
    dataset = datamodule.datasets[split]
    result = {"split": split, **roundtrip(vae, dataset, progress=progress),
              **session_roundtrip(vae, dataset, progress=progress)}
    atomic_write_text(run_dir / "roundtrip.json", json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a vae-stage run folder (experiment=demo_vae)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    args = parser.parse_args(argv)
    try:
        result = run_roundtrip(args.run_dir, args.split)
    except ReadlitError as err:
        fail(str(err))
    print(f"{result['clips']} {args.split} clips: PSNR {result['psnr']:.2f} dB; mouth opening correlation "
          f"(true vs reconstructed) {result['mouth_corr']:.3f}, measure ceiling (true vs input) "
          f"{result['mouth_corr_input']:.3f}, one opening per latent frame allows "
          f"{result['mouth_corr_latent_mean']:.3f}")
    print(f"{result['sessions']} whole {args.split} sessions of {result['session_frames']} frames, each in one piece: "
          f"PSNR {result['psnr_session']:.2f} dB; mouth opening correlation {result['mouth_corr_session']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
