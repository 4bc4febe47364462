"""What an a2v checkpoint holds, before (format 1: the frozen VAE's weights inside) and after (format 2: by reference).

    python experiments/checkpoint_size/run.py [--ckpt logs/demo/a2v/checkpoints/last.ckpt] [--out DIR]

Paper scale is computed from the parameter counts of the configured modules, built on the meta device (no memory,
no weights): the A2V-DiT of ``conf/model/net/ltx2b.yaml``, the SpeechAE encoder of ``conf/model/speechae.yaml`` on
whisper-tiny windows, diffusers' ``AutoencoderKLLTXVideo`` with its default (LTX-Video 0.9.0) architecture, fp32
weights, AdamW's two moments per trained parameter, an EMA of the trained weights (format 1 averaged the whole
DiT and audio encoder, frozen or not). Demo scale is measured: the given format-2 checkpoint, and the same
checkpoint rebuilt as format 1 wrote it (its VAE's weights under ``vae.``, the EMA under ``ema.``), both saved.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKLLTXVideo
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.checkpoint import EMA_KEY, KEY, load_checkpoint
from readlit.nn.speech_ae import SpeechAE
from readlit.resolvers import PROJECT_ROOT
from readlit.utils.atomic import atomic_write_json, atomic_write_text
from readlit.vae import VideoVAE

GB = 1e9


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def paper_scale() -> dict[str, float]:
    """Bytes of each part of a paper-scale a2v checkpoint (fp32), in GB, for both formats."""
    net_cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "model" / "net" / "ltx2b.yaml")
    net_cfg.pop("_partial_")
    speechae = OmegaConf.to_container(OmegaConf.load(PROJECT_ROOT / "conf" / "model" / "speechae.yaml").net)
    speechae.update(in_tokens=10 * 5, in_dim=384)  # whisper-tiny: 10-token windows x 5 hidden states x 384
    speechae.pop("_target_")
    with torch.device("meta"):
        net = instantiate(net_cfg, in_channels=128, audio_dim=speechae["latent_dim"])
        audio = SpeechAE(**speechae).encoder
        vae = AutoencoderKLLTXVideo()
    n_net, n_audio, n_vae = count(net), count(audio), count(vae)
    parts = {"A2V-DiT weights": n_net, "SpeechAE encoder weights (frozen)": n_audio,
             "AdamW moments (2 x the DiT)": 2 * n_net}
    before = {**parts, "VAE weights (frozen)": n_vae, "EMA of DiT + audio encoder": n_net + n_audio}
    after = {**parts, "EMA of the trained weights (DiT)": n_net}
    return {"parameters": {"net": n_net, "audio": n_audio, "vae": n_vae},
            "format1_gb": {k: 4 * v / GB for k, v in before.items()},
            "format2_gb": {k: 4 * v / GB for k, v in after.items()}}


def saved_bytes(checkpoint: dict) -> int:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getbuffer().nbytes


def demo_scale(path: Path) -> dict[str, int]:
    """Bytes of a format-2 checkpoint file and of the same checkpoint as format 1 would have saved it."""
    checkpoint = load_checkpoint(path, stage="a2v")
    header = checkpoint[KEY]
    vae = VideoVAE(**header["vae"]["kwargs"])
    old = dict(checkpoint)
    averaged = {**{k: v for k, v in checkpoint["state_dict"].items() if k.startswith(("net.", "audio."))},
                **checkpoint.get(EMA_KEY, {})}
    old["state_dict"] = {**checkpoint["state_dict"], **{f"vae.{k}": v for k, v in vae.state_dict().items()},
                         **{f"ema.{k}": v for k, v in averaged.items()}}
    old.pop(EMA_KEY, None)
    return {"format2_file": path.stat().st_size, "format2_saved": saved_bytes(checkpoint),
            "format1_saved": saved_bytes(old), "vae_params": count(vae)}


def markdown(paper: dict, demo: dict | None) -> str:
    lines = ["| part (paper scale, fp32) | format 1 (GB) | format 2 (GB) |", "|---|---|---|"]
    keys = list(dict.fromkeys([*paper["format1_gb"], *paper["format2_gb"]]))
    for key in keys:
        lines.append(f"| {key} | {paper['format1_gb'].get(key, 0):.2f} | {paper['format2_gb'].get(key, 0):.2f} |")
    lines.append(f"| **total** | **{sum(paper['format1_gb'].values()):.2f}** | "
                 f"**{sum(paper['format2_gb'].values()):.2f}** |")
    if demo is not None:
        lines += ["", "| demo checkpoint | bytes |", "|---|---|",
                  f"| format 2 (the file) | {demo['format2_file']:,} |",
                  f"| format 1 (same weights, VAE and whole-module EMA inside) | {demo['format1_saved']:,} |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=None, help="a format-2 a2v checkpoint (demo scale)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    paper = paper_scale()
    demo = demo_scale(args.ckpt) if args.ckpt else None
    atomic_write_json(args.out / "results.json", {"paper": paper, "demo": demo})
    atomic_write_text(args.out / "results.md", markdown(paper, demo))
    print(markdown(paper, demo))
    print(json.dumps(paper["parameters"]))


if __name__ == "__main__":
    main()
