"""Generate and score talking-head videos: ``python -m readlit.evaluate`` (``make eval``).

    python -m readlit.evaluate ckpt=CKPT data=synthetic [frames=[121,457,1017]] [limit=N]
    python -m readlit.evaluate ckpt=latest data=mead      (= make eval DATASET=mead)
    python -m readlit.evaluate generated=DIR reference=DIR [dataset=mead] [metrics=[fid,sync]]

With ``ckpt`` the test split of ``data`` is generated first (:mod:`readlit.eval.protocol`, ANS sampler of the
``sampler`` config, runtimes recorded), one folder per length in ``frames``, then scored
(:mod:`readlit.eval.scoring`). Writes ``results.json`` and ``results.md`` (Table 1 columns, then our row beside
the paper's rows of Table ``paper_table``, :mod:`readlit.eval.report`) to ``out`` (per length).
``ckpt=latest`` picks the newest a2v checkpoint trained on ``data`` under ``paths.log_dir`` (:mod:`readlit.runs`)
and says which on one line; with none it refuses, naming the command that trains one (``train_commands``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from readlit import checks
from readlit.cli import CONFIG_DIR, check_composes, run_task
from readlit.errors import ConfigError
from readlit.eval.metrics.fvd import PROTOCOLS
from readlit.eval.metrics.sync import MODES
from readlit.eval.protocol import MANIFEST, generate_split
from readlit.eval.report import write_report
from readlit.eval.scoring import check_metrics, score_folders
from readlit.frames import check_frame_count
from readlit.generate import check_device
from readlit.paper_results import paper_table
from readlit.pipeline import TalkingHeadPipeline, check_method
from readlit.runs import LATEST, latest_a2v_checkpoint


def check_eval(cfg: DictConfig) -> None:
    """The keys of an evaluation, checked before any model, network or video is loaded."""
    check_device(cfg.device)
    metrics = check_metrics(cfg.metrics)
    if "fvd" in metrics:
        checks.choice("fvd.protocol", cfg.fvd.protocol, PROTOCOLS)
    if "sync" in metrics:
        checks.choice("sync.mode", cfg.sync.mode, MODES)
    checks.writable_folder("out", cfg.out)
    if cfg.ckpt is None:
        return
    check_method(cfg.long_video, key="long_video")
    checks.integer("seed", cfg.seed)
    if cfg.limit is not None:
        checks.integer("limit", cfg.limit, minimum=1)
    if cfg.frames is not None:
        if not isinstance(cfg.frames, ListConfig) or not cfg.frames:
            raise ConfigError(f"frames={cfg.frames} must be a list of frame counts, e.g. [121,457]")
        for frames in cfg.frames:
            checks.integer("frames", frames, minimum=1)
            check_frame_count(frames, key="frames")


def generate_and_score(cfg: DictConfig) -> dict[int, dict[str, Any]]:
    """Generate the test split for each length in ``cfg.frames`` with ``cfg.ckpt``, then score each length."""
    device = check_device(cfg.device)
    pipeline = TalkingHeadPipeline.from_checkpoint(cfg.ckpt, device)
    sampler = pipeline.sampler_for(instantiate(cfg.sampler))
    synthetic = "seed" in cfg.data and "identities" in cfg.data
    results = {}
    for frames in cfg.frames or [cfg.data.num_frames]:
        data = OmegaConf.merge(cfg.data, {"num_frames": frames, "clip_stride": frames, "size": pipeline.size,
                                          "latents": None, "return_video": True, "audio_frontend": None})
        if synthetic:  # sessions long enough for one clip of every length
            data.session_seconds = max(data.session_seconds, frames / data.fps + 1)
        datamodule = instantiate(data)
        datamodule.setup("test")
        out = Path(cfg.out) / f"frames{frames}"
        generate_split(pipeline, sampler, datamodule.datasets["test"], out, cfg.seed, cfg.limit, method=cfg.long_video)
        scored = OmegaConf.merge(cfg, {"generated": str(out / "generated"), "reference": str(out / "reference"),
                                       "manifest": str(out / "generated" / MANIFEST)})
        results[frames] = {**score_folders(scored), "frames": frames}
        json_path, md_path = write_report(results[frames], out, paper(cfg))
        print(f"{frames} frames: wrote {md_path} and {json_path.name}")
    return results


def paper(cfg: DictConfig) -> dict[str, Any] | None:
    """The paper's table the report sets beside ours (``paper_table``), or None."""
    return None if cfg.paper_table is None else paper_table(cfg.paper_table)


def resolve_ckpt(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``ckpt=latest`` replaced by the newest a2v checkpoint trained on ``cfg.dataset`` (printed)."""
    if cfg.ckpt != LATEST:
        return cfg
    picked = latest_a2v_checkpoint(cfg.paths.log_dir, cfg.dataset, cfg.train_commands.get(cfg.dataset))
    print(f"ckpt={LATEST}: {picked} (the newest a2v checkpoint trained on data={cfg.dataset})")
    return OmegaConf.merge(cfg, {"ckpt": str(picked)})


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score (generating first when ``ckpt`` is set), write results.json and results.md, print the table's path."""
    check_eval(cfg)
    if cfg.ckpt is not None:
        return generate_and_score(resolve_ckpt(cfg))
    results = score_folders(cfg)
    json_path, md_path = write_report(results, cfg.out, paper(cfg))
    print(f"wrote {md_path} and {json_path.name}")
    return results


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    OmegaConf.resolve(cfg)
    run_task(evaluate, cfg)


def main() -> None:
    """Console entry point."""
    check_composes("eval", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
