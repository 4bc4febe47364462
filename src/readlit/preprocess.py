"""Raw HDTF / MEAD downloads -> the clip cache the datamodules train from; any datamodule -> a latent cache.

    python -m readlit.preprocess data=hdtf raw_dir=/path/to/HDTF [workers=8] [whisper=false]
    python -m readlit.preprocess data=mead raw_dir=/path/to/MEAD split.official=true
    python -m readlit.preprocess stage=latents data=hdtf vae=ltx_0_9_0 latents.out_dir=DIR [latents.device=cuda]

Writes ``out_dir`` (default ``data.root``, where ``data=hdtf`` / ``data=mead`` training reads): one folder
per clip (:mod:`readlit.data.cache`) and ``manifest.json``. Run it again after an interruption: finished
clips are kept. Accepted raw layouts: :mod:`readlit.data.preprocess.hdtf_layout`,
:mod:`readlit.data.preprocess.mead_layout`.

``stage=latents`` encodes the clips ``data`` gives (its train/val/test windows) with ``vae`` into the shards of
:mod:`readlit.data.latent_cache`, resumable the same way; training reads them with ``data.latents=DIR``.
"""

import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from readlit.cli import check_composes, run_task
from readlit.data.preprocess.clip_job import JobSettings
from readlit.data.preprocess.latents import build_latent_cache
from readlit.data.preprocess.pipeline import SplitSettings, build_cache
from readlit.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def _dataset(cfg: DictConfig) -> str:
    name = cfg.data.get("name")
    if name not in cfg.raw:
        raise ConfigError(f"the data config ({cfg.data.get('_target_')}) has no raw layout to preprocess; "
                          f"use data={' or data='.join(cfg.raw)}")
    return name


def _check(cfg: DictConfig, name: str) -> Path:
    raw_dir = Path(cfg.raw_dir).expanduser()
    if not raw_dir.is_dir():
        raise DataError(f"raw_dir={raw_dir} is not a folder; point it at the downloaded {name.upper()} data")
    if cfg.size < 16 or cfg.size % 2:
        raise ConfigError(f"size={cfg.size} must be an even number of pixels >= 16 (e.g. 512)")
    if cfg.fps < 1 or cfg.sample_rate % cfg.fps:
        raise ConfigError(f"sample_rate={cfg.sample_rate} must be a multiple of fps={cfg.fps}")
    if cfg.min_frames < 1 or cfg.workers < 1:
        raise ConfigError(f"min_frames={cfg.min_frames} and workers={cfg.workers} must be at least 1")
    if cfg.split.official and name != "mead":
        raise ConfigError(f"split.official=true is MEAD's sentence split; {name} has none: "
                          "set split.official=false")
    return raw_dir


def _settings(cfg: DictConfig, raw_dir: Path) -> JobSettings:
    audio = OmegaConf.to_container(cfg.audio, resolve=True) if cfg.whisper else None
    if audio is not None:
        # Built once here so that a bad audio config fails now, on one line, not inside every worker.
        instantiate(audio)()
    face_track = OmegaConf.to_container(cfg.face_track, resolve=True)
    instantiate(face_track)
    return JobSettings(root=str(Path(cfg.out_dir).expanduser()), raw_dir=str(raw_dir), size=cfg.size,
                       fps=cfg.fps, sample_rate=cfg.sample_rate, min_frames=cfg.min_frames,
                       scene_cut=float(cfg.scene_cut), face_track=face_track, audio=audio,
                       single_thread=cfg.workers > 1)


def preprocess(cfg: DictConfig) -> dict[str, Any]:
    """Build (or resume) the cache that ``cfg`` describes (``stage``: clips or latents); returns its manifest."""
    stages = {"clips": preprocess_clips, "latents": preprocess_latents}
    if cfg.stage not in stages:
        raise ConfigError(f"stage={cfg.stage} is not one of {sorted(stages)}")
    return stages[cfg.stage](cfg)


def preprocess_latents(cfg: DictConfig) -> dict[str, Any]:
    """Encode the clips of ``cfg.data`` with ``cfg.vae`` into a latent cache at ``latents.out_dir``."""
    settings = cfg.latents
    if settings.shard_size < 1 or settings.batch_size < 1:
        raise ConfigError(f"latents.shard_size={settings.shard_size} and latents.batch_size={settings.batch_size} "
                          "must be at least 1")
    if torch.device(settings.device).type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"latents.device={settings.device} but this machine has no CUDA GPU; use latents.device=cpu")
    datamodule = instantiate(OmegaConf.merge(cfg.data, {"return_video": True, "latents": None}))
    unknown = set(settings.splits) - {"train", "val", "test"}
    if unknown or not settings.splits:
        raise ConfigError(f"latents.splits={list(settings.splits)} must name some of train, val, test")
    vae = instantiate(cfg.vae, frozen=True)
    frontend = cfg.data.get("audio_frontend")
    build = {
        "vae": {"config": vae.config, "pretrained": cfg.vae.pretrained, "fingerprint": vae.fingerprint()},
        "data": datamodule.item_settings(),
        "audio": OmegaConf.to_container(frontend, resolve=True) if frontend is not None else None,
        "batch_size": settings.batch_size,
        "device": settings.device,
    }
    return build_latent_cache(datamodule, vae, settings.out_dir, list(settings.splits), settings.shard_size,
                              settings.batch_size, settings.device, build, cfg.progress)


def preprocess_clips(cfg: DictConfig) -> dict[str, Any]:
    """Raw videos -> the clip cache (``stage=clips``)."""
    name = _dataset(cfg)
    raw_dir = _check(cfg, name)
    layout = instantiate(cfg.raw[name])
    settings = _settings(cfg, raw_dir)
    split = SplitSettings(dict(cfg.split.fractions), seed=cfg.split.seed, official=cfg.split.official)
    config = {key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
              for key, value in cfg.items() if key != "hydra"}
    manifest, stats = build_cache(layout, raw_dir, settings, cfg.workers, split, config, cfg.progress)
    counts = manifest["counts"]
    log.info("cache %s: %d clips (%d new, %d kept), %d frames; skipped %d: %s; splits %s", settings.root,
             counts["clips"], stats.made, stats.reused, counts["frames"], counts["skipped"],
             json.dumps(counts["skipped_by_reason"]), json.dumps(counts["splits"]))
    return manifest


@hydra.main(version_base="1.3", config_path="../../conf", config_name="preprocess")
def _hydra_main(cfg: DictConfig) -> None:
    run_task(preprocess, cfg)


def main() -> None:
    """Console entry point."""
    check_composes("preprocess", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
