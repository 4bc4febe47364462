"""Training runs under the log folder, and the newest A2V checkpoint trained on a dataset (``make eval`` without CKPT).

A run folder is what one Hydra job of ``python -m readlit.train`` writes: ``.hydra/hydra.yaml`` records the config
groups it chose (``hydra.runtime.choices``, e.g. ``model: a2v`` and ``data: synthetic``) and ``checkpoints/`` what it
saved. Single runs (``logs/<task>/runs/<time>``), sweep jobs (``logs/<task>/multiruns/<time>/<n>``) and the demo's
stages (``logs/demo/a2v``) all have that shape, so one walk of the log folder finds them all.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from readlit.errors import CheckpointError

# ``ckpt=latest``: evaluate the newest a2v checkpoint trained on the evaluated dataset.
LATEST = "latest"
A2V_MODEL = "a2v"  # the model config group option of stage 2 (conf/model/a2v.yaml)


def run_choices(run: Path) -> dict[str, str]:
    """The config group options a run chose (``.hydra/hydra.yaml``); empty when the file is absent or unreadable."""
    try:
        recorded = yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())
        choices = recorded["hydra"]["runtime"]["choices"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    return {str(group): str(option) for group, option in (choices or {}).items()}


def run_checkpoint(run: Path) -> Path | None:
    """A run's checkpoint to evaluate: ``checkpoints/last.ckpt``, else its newest ``.ckpt``; None when it saved none."""
    last = run / "checkpoints" / "last.ckpt"
    if last.is_file():
        return last
    saved = [path for path in (run / "checkpoints").glob("*.ckpt") if path.is_file()]
    return max(saved, key=lambda path: (path.stat().st_mtime, path.name), default=None)


def a2v_checkpoints(log_dir: str | Path, dataset: str) -> list[Path]:
    """The checkpoint of every a2v run under ``log_dir`` trained with ``data=<dataset>``, newest first."""
    found = []
    for hydra_yaml in Path(log_dir).glob("**/.hydra/hydra.yaml"):
        run = hydra_yaml.parent.parent
        choices = run_choices(run)
        if choices.get("model") != A2V_MODEL or choices.get("data") != dataset:
            continue
        if (checkpoint := run_checkpoint(run)) is not None:
            found.append(checkpoint)
    return sorted(found, key=lambda path: (path.stat().st_mtime, str(path)), reverse=True)


def latest_a2v_checkpoint(log_dir: str | Path, dataset: str, train_command: str | None) -> Path:
    """The newest a2v checkpoint trained on ``dataset`` under ``log_dir``; CheckpointError naming what trains one."""
    found = a2v_checkpoints(log_dir, dataset)
    if found:
        return found[0]
    how = train_command or f"python -m readlit.train experiment=<an a2v experiment> data={dataset}"
    raise CheckpointError(f"ckpt={LATEST}: no a2v checkpoint trained on data={dataset} under {log_dir}; train one "
                          f"with `{how}`, or name one with ckpt=PATH (make eval CKPT=PATH)")
