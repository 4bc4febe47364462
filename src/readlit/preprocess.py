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
import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from readlit import checks
from readlit.cli import CONFIG_DIR, check_composes, run_task
from readlit.data.preprocess.clip_job import JobSettings
from readlit.data.preprocess.latents import build_latent_cache
from readlit.data.preprocess.pipeline import SplitSettings, build_cache
from readlit.errors import ConfigError, DataError, ReadlitError, renamed, scope
from readlit.generate import check_device

log = logging.getLogger(__name__)


def _dataset(cfg: DictConfig) -> str:
    name = cfg.data.get("name")
    if name not in cfg.raw:
        raise ConfigError(f"the data config ({cfg.data.get('_target_')}) has no raw layout to preprocess; "
                          f"use data={' or data='.join(cfg.raw)}")
    return name


def _check(cfg: DictConfig, name: str) -> Path:
    """Every key of a clip build, checked for type and range before anything is read or written."""
    raw_dir = Path(cfg.raw_dir).expanduser()
    if not raw_dir.is_dir():
        raise DataError(f"raw_dir={raw_dir} is not a folder; point it at the downloaded {name.upper()} data")
    size = checks.integer("size", cfg.size, minimum=16)
    if size % 2:
        raise ConfigError(f"size={size} must be an even number of pixels >= 16 (e.g. 512)")
    fps = checks.integer("fps", cfg.fps, minimum=1)
    if checks.integer("sample_rate", cfg.sample_rate, minimum=1) % fps:
        raise ConfigError(f"fps={fps} must divide sample_rate={cfg.sample_rate}")
    checks.integer("min_frames", cfg.min_frames, minimum=1)
    checks.integer("workers", cfg.workers, minimum=1)
    # The mean grey change (0-255) between frames that is a cut: below 0 every frame is a cut, past 255 none is.
    checks.number("scene_cut", cfg.scene_cut, minimum=0.0, maximum=255.0)
    checks.flag("whisper", cfg.whisper)
    checks.flag("progress", cfg.progress)
    checks.flag("split.official", cfg.split.official)
    checks.integer("split.seed", cfg.split.seed)
    fractions = cfg.split.fractions
    if (not isinstance(fractions, DictConfig) or not fractions
            or any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in fractions.values())
            or sum(fractions.values()) <= 0):
        raise ConfigError(f"split.fractions={fractions} needs fractions >= 0 with a positive sum, "
                          "e.g. {train: 0.95, test: 0.05}")
    if cfg.split.official and name != "mead":
        raise ConfigError(f"split.official=true is MEAD's sentence split; {name} has none: "
                          "set split.official=false")
    checks.writable_folder("out_dir", cfg.out_dir)
    return raw_dir


def _settings(cfg: DictConfig, raw_dir: Path) -> JobSettings:
    audio = OmegaConf.to_container(cfg.audio, resolve=True) if cfg.whisper else None
    if audio is not None:
        # Built once here so that a bad audio config fails now, on one line, not inside every worker.
        with scope("audio"):
            instantiate(audio)()
    face_track = OmegaConf.to_container(cfg.face_track, resolve=True)
    with scope("face_track"):
        instantiate(face_track)
    return JobSettings(root=str(Path(cfg.out_dir).expanduser()), raw_dir=str(raw_dir), size=cfg.size,
                       fps=cfg.fps, sample_rate=cfg.sample_rate, min_frames=cfg.min_frames,
                       scene_cut=float(cfg.scene_cut), face_track=face_track, audio=audio,
                       single_thread=cfg.workers > 1)


def preprocess(cfg: DictConfig) -> dict[str, Any]:
    """Build (or resume) the cache that ``cfg`` describes (``stage``: clips or latents); returns its manifest."""
    stages = {"clips": preprocess_clips, "latents": preprocess_latents}
    checks.choice("stage", cfg.stage, sorted(stages))
    return stages[cfg.stage](cfg)


def preprocess_latents(cfg: DictConfig) -> dict[str, Any]:
    """Encode the clips of ``cfg.data`` with ``cfg.vae`` into a latent cache at ``latents.out_dir``."""
    settings = cfg.latents
    checks.integer("latents.shard_size", settings.shard_size, minimum=1)
    checks.integer("latents.batch_size", settings.batch_size, minimum=1)
    with renamed("device", "latents.device"):
        check_device(settings.device)
    unknown = set(settings.splits) - {"train", "val", "test"}
    if unknown or not settings.splits:
        raise ConfigError(f"latents.splits={list(settings.splits)} must name some of train, val, test")
    checks.writable_folder("latents.out_dir", settings.out_dir)
    checks.flag("progress", cfg.progress)
    datamodule = instantiate(OmegaConf.merge(cfg.data, {"return_video": True, "latents": None}))
    vae = instantiate(cfg.vae, frozen=True)
    _check_size(datamodule, vae)
    frontend = cfg.data.get("audio_frontend")
    build = {
        "vae": {"config": vae.config, "pretrained": cfg.vae.pretrained, "fingerprint": vae.fingerprint()},
        "data": datamodule.item_settings(),
        "audio": OmegaConf.to_container(frontend, resolve=True) if frontend is not None else None,
        "batch_size": settings.batch_size,
        "device": settings.device,
    }
    with renamed("out_dir", "latents.out_dir"):
        return build_latent_cache(datamodule, vae, settings.out_dir, list(settings.splits), settings.shard_size,
                                  settings.batch_size, settings.device, build, cfg.progress)


def _check_size(datamodule: Any, vae: Any) -> None:
    """The clips' frame size must be a multiple of the VAE's spatial compression (checked before a shard is made)."""
    size = datamodule.item_settings().get("size")
    if isinstance(size, int) and size % vae.spatial_ratio:
        low = size // vae.spatial_ratio * vae.spatial_ratio
        raise ConfigError(f"data.size={size} is not a multiple of the VAE's spatial compression {vae.spatial_ratio}; "
                          f"use {low or vae.spatial_ratio} or {low + vae.spatial_ratio}")


def preprocess_clips(cfg: DictConfig) -> dict[str, Any]:
    """Raw videos -> the clip cache (``stage=clips``)."""
    name = _dataset(cfg)
    raw_dir = _check(cfg, name)
    layout = instantiate(cfg.raw[name])
    settings = _settings(cfg, raw_dir)
    split = SplitSettings(dict(cfg.split.fractions), seed=cfg.split.seed, official=cfg.split.official)
    config = {key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
              for key, value in cfg.items() if key != "hydra"}
    out_dir = Path(settings.root)
    made_out_dir = not out_dir.exists()
    try:
        with renamed("root", "out_dir"):
            manifest, stats = build_cache(layout, raw_dir, settings, cfg.workers, split, config, cfg.progress)
    except ReadlitError:
        if made_out_dir:  # a refused build leaves nothing behind where there was nothing
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    counts = manifest["counts"]
    log.info("cache %s: %d clips (%d new, %d kept), %d frames; skipped %d: %s; splits %s", settings.root,
             counts["clips"], stats.made, stats.reused, counts["frames"], counts["skipped"],
             json.dumps(counts["skipped_by_reason"]), json.dumps(counts["splits"]))
    return manifest


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="preprocess")
def _hydra_main(cfg: DictConfig) -> None:
    run_task(preprocess, cfg)


def main() -> None:
    """Console entry point."""
    check_composes("preprocess", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
