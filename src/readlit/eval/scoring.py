"""Score a folder of generated videos against a folder of references, every requested metric at once.

Videos are paired by file name (``<name>.mp4`` in both folders); the speech is the generated mp4's audio
track (the reference's when the generated file has none), resampled to 16 kHz. Every requested metric whose
weights are present is computed; the others are reported as missing with the reason (the file, its source
and config key). The split's manifest (:mod:`readlit.eval.protocol`) gives each clip's backbone seconds (the
Runtime column) and, for synthetic clips, the drawn face's identity that mouth-sync needs; a clip without one
leaves mouth-sync missing, with the reason. :func:`score_folders` returns what
:func:`readlit.eval.report.write_report` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from omegaconf import DictConfig, ListConfig

from readlit.audio import load_audio
from readlit.data.synthetic import make_identity
from readlit.data.video_io import read_mp4
from readlit.errors import CheckpointError, ConfigError, DataError
from readlit.eval.metrics import pixel
from readlit.eval.metrics.efid import EFID
from readlit.eval.metrics.fid import FID
from readlit.eval.metrics.fvd import FVD
from readlit.eval.metrics.mouth_sync import MouthSync
from readlit.eval.metrics.sync import SyncScore
from readlit.eval.protocol import read_manifest
from readlit.eval.weights import local_path, missing_message

METRICS = ("fid", "fvd", "sync", "e_fid", "psnr", "ssim", "lpips", "mouth_sync")


@dataclass
class Pair:
    """One generated video and its reference, decoded."""

    name: str
    fake: np.ndarray  # (F, H, W, 3) uint8
    real: np.ndarray
    audio: np.ndarray  # (n,) float32 at 16 kHz


def pair_names(generated: Path, reference: Path) -> list[str]:
    """Stems of the generated mp4s; DataError when a folder is missing or a reference is absent."""
    for name, folder in (("generated", generated), ("reference", reference)):
        if not folder.is_dir():
            raise DataError(f"{name}={folder} is not a folder of videos")
    names = sorted(p.stem for p in generated.glob("*.mp4"))
    if not names:
        raise DataError(f"generated={generated} holds no .mp4 files")
    absent = [n for n in names if not (reference / f"{n}.mp4").is_file()]
    if absent:
        raise DataError(f"reference={reference} lacks {len(absent)} of the generated videos (the same names), "
                        f"e.g. {absent[:3]}")
    return names


def load_pair(name: str, generated: Path, reference: Path) -> Pair:
    fake, _, fake_audio, _ = read_mp4(generated / f"{name}.mp4")
    real, _, _, _ = read_mp4(reference / f"{name}.mp4")
    source = generated if fake_audio is not None else reference
    audio = load_audio(source / f"{name}.mp4", 16000).numpy().astype(np.float32)
    return Pair(name, fake, real, audio)


def _frames_nchw(frames: np.ndarray) -> torch.Tensor:
    return rearrange(torch.from_numpy(frames), "f h w c -> f c h w")


def _paired_frames(pair: Pair) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames in [0, 1], (F, 3, H, W), cut to the shorter video; sizes must agree."""
    if pair.fake.shape[1:] != pair.real.shape[1:]:
        raise DataError(f"{pair.name}: generated {pair.fake.shape[1:3]} and reference {pair.real.shape[1:3]} "
                        "frames differ in size; PSNR/SSIM/LPIPS compare pixels")
    count = min(len(pair.fake), len(pair.real))
    return pixel.to_unit(torch.from_numpy(pair.fake[:count])), pixel.to_unit(torch.from_numpy(pair.real[:count]))


def check_metrics(metrics: Any) -> list[str]:
    """``metrics`` if it is a list of known metric names."""
    names = list(metrics) if isinstance(metrics, list | tuple | ListConfig) else [metrics]
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ConfigError(f"metrics={names} names unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return names


class Scorers:
    """Builds each requested metric (or records why it is missing) and feeds it every pair.

    Args:
        names: the clips that will be scored.
        clips: the manifest's entries by clip name, or None when there is no manifest.
    """

    def __init__(self, cfg: DictConfig, names: list[str], clips: dict[str, dict[str, Any]] | None) -> None:
        self.cfg, self.clips, self.missing, self.metrics = cfg, clips, {}, {}
        builders: dict[str, Callable[[], Any]] = {
            "fid": lambda: FID(self._w("inception"), cfg.weights_dir),
            "fvd": self._fvd,
            "sync": lambda: SyncScore(self._w("syncnet"), cfg.weights_dir, mode=cfg.sync.mode,
                                      s3fd_weights=self._w("s3fd"), min_track=cfg.sync.get("min_track", 100)),
            "e_fid": self._efid,
            "psnr": pixel.psnr, "ssim": pixel.ssim,
            "lpips": lambda: pixel.lpips(self._w("alexnet"), cfg.weights_dir),
            "mouth_sync": MouthSync,
        }
        check_metrics(cfg.metrics)
        for name in cfg.metrics:
            if name == "mouth_sync" and (why := self._faceless(names)):
                self.missing[name] = why
                continue
            try:
                self.metrics[name] = builders[name]().to(cfg.device)
            except CheckpointError as err:
                self.missing[name] = str(err)

    def _faceless(self, names: list[str]) -> str | None:
        """Why mouth-sync cannot score these clips (one has no synthetic identity in the manifest), else None."""
        if self.clips is None:
            return f"no manifest {self.cfg.manifest} naming each clip's synthetic identity (mouth-sync needs the face)"
        without = [name for name in names if "identity" not in self.clips.get(name, {})]
        if without:
            return (f"{len(without)} of {len(names)} clips have no synthetic identity in {self.cfg.manifest} "
                    f"(e.g. {without[0]}); mouth-sync needs the drawn face")
        return None

    def _w(self, name: str) -> str | None:
        return self.cfg.weights.get(name)

    def _fvd(self) -> FVD:
        protocol = self.cfg.fvd.protocol
        torchscript = local_path("i3d_torchscript", self.cfg.weights_dir, self._w("i3d_torchscript"))
        state_dict = local_path("i3d_pretrained_400", self.cfg.weights_dir, self._w("i3d_pretrained_400"))
        if protocol == "styleganv" and torchscript.is_file():
            return FVD(protocol, "torchscript", torchscript)
        if protocol == "styleganv" and not state_dict.is_file():
            raise CheckpointError(f"{missing_message('i3d_torchscript', torchscript)}; or the same network as "
                                  f"{state_dict.name} (weights.i3d_pretrained_400)")
        return FVD(protocol, "state_dict", state_dict)

    def _efid(self) -> EFID:
        metric = EFID(self._w("deep3d"), self._w("lm3d_std"), self.cfg.weights_dir)
        if self.cfg.landmarks_dir is None:
            raise CheckpointError("e_fid needs 5-point face landmarks per frame: set landmarks_dir= (conf/eval.yaml)")
        return metric

    def add(self, pair: Pair) -> None:
        for name, metric in list(self.metrics.items()):
            getattr(self, f"_add_{name}")(metric, pair)

    def _add_fid(self, metric: FID, pair: Pair) -> None:
        for chunk in _frames_nchw(pair.fake).split(32):
            metric.update(chunk, real=False)
        for chunk in _frames_nchw(pair.real).split(32):
            metric.update(chunk, real=True)

    def _add_fvd(self, metric: FVD, pair: Pair) -> None:
        metric.update(pair.fake, real=False)
        metric.update(pair.real, real=True)

    def _add_sync(self, metric: SyncScore, pair: Pair) -> None:
        metric.update(pair.fake, pair.audio)

    def _add_e_fid(self, metric: EFID, pair: Pair) -> None:
        root = Path(self.cfg.landmarks_dir)
        for side, frames in (("generated", pair.fake), ("reference", pair.real)):
            path = root / side / f"{pair.name}.npy"
            if not path.is_file():
                raise DataError(f"E-FID landmarks {path} are missing ((F, 5, 2) per frame)")
            metric.update((frames, np.load(path)), real=side == "reference")

    def _add_psnr(self, metric: Any, pair: Pair) -> None:
        fake, real = _paired_frames(pair)
        for fake_chunk, real_chunk in zip(fake.split(16), real.split(16), strict=True):
            metric.update(fake_chunk.to(metric.device), real_chunk.to(metric.device))

    _add_ssim = _add_psnr
    _add_lpips = _add_psnr

    def _add_mouth_sync(self, metric: MouthSync, pair: Pair) -> None:
        clip = self.clips[pair.name]
        metric.update(pair.fake, pair.audio, make_identity(int(clip["data_seed"]), int(clip["identity"])))

    def reset(self) -> None:
        """Forget every pair added (the metric networks stay loaded), to score a new set."""
        for metric in self.metrics.values():
            metric.reset()

    def results(self) -> dict[str, float]:
        """Every metric's value over the pairs added (across processes, when torch.distributed runs)."""
        out = {}
        for name, metric in self.metrics.items():
            value = metric.compute()
            values = value if isinstance(value, dict) else {name: value}
            out.update({k: float(v) for k, v in values.items()})
        return out


def mean_runtime(clips: dict[str, dict[str, Any]] | None, names: list[str]) -> float | None:
    """Mean backbone seconds per video over the scored clips the manifest timed; None when it timed none."""
    times = [clips[n]["backbone_seconds"] for n in names if "backbone_seconds" in (clips or {}).get(n, {})]
    return float(np.mean(times)) if times else None


def score_folders(cfg: DictConfig) -> dict[str, Any]:
    """Every requested metric over the paired folders; results as :func:`readlit.eval.report.write_report` takes."""
    generated, reference = Path(cfg.generated), Path(cfg.reference)
    names = pair_names(generated, reference)
    clips = read_manifest(cfg.manifest) if Path(cfg.manifest).is_file() else None
    scorers = Scorers(cfg, names, clips)
    for name in names:
        scorers.add(load_pair(name, generated, reference))
    metrics: dict[str, float | None] = scorers.results()
    metrics["runtime"] = mean_runtime(clips, names)
    missing = dict(scorers.missing)
    if "sync" in missing:
        missing.update(sync_c=missing["sync"], sync_d=missing.pop("sync"))
    protocol = {"fvd": f"{cfg.fvd.protocol}, 16-frame clips", "sync": f"{cfg.sync.mode}, ±15 offsets",
                "fid": "torch-fidelity Inception pool3, all frames, uint8, TF1 bilinear"}
    return {"dataset": cfg.dataset, "method": cfg.method, "videos": len(names), "generated": str(generated),
            "reference": str(reference), "metrics": metrics, "missing": missing, "protocol": protocol}
