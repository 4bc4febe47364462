"""The Lightning Trainer's arguments checked before a run starts (docs/design.md §10).

Lightning refuses some bad values only once training runs (``check_val_every_n_epoch=0`` divides by zero after
the first epoch), accepts others silently (``log_every_n_steps=0``, a negative ``gradient_clip_val``) and reports a
missing GPU as a traceback. Each key a config may set is checked here, named by its own parameter name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from readlit import checks
from readlit.errors import ConfigError

PRECISIONS = ("64", "32", "16", "bf16", "64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed",
              "transformer-engine", "transformer-engine-float16")
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")


def _limit(name: str, value: Any) -> None:
    """A batch limit: a count (int >= 0) or a share of the batches (float in [0, 1])."""
    if isinstance(value, float):
        checks.number(name, value, minimum=0.0, maximum=1.0)
    else:
        checks.integer(name, value, minimum=0)


def _accelerator(accelerator: Any, devices: Any) -> None:
    checks.choice("accelerator", accelerator, ACCELERATORS)
    if devices != "auto" and not isinstance(devices, list | tuple | str):
        if checks.integer("devices", devices, minimum=-1) == 0:
            raise ConfigError("devices=0 must be at least 1 (or -1: all of them)")
    if accelerator in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"accelerator={accelerator} but this machine has no CUDA GPU; use trainer=cpu")
        if isinstance(devices, int) and devices > torch.cuda.device_count():
            raise ConfigError(f"devices={devices} but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("accelerator=mps but MPS is not available here; use trainer=cpu")


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """Refuse a Trainer config with a value Lightning would fail on late, ignore, or turn into a traceback."""
    get = trainer.get
    _accelerator(get("accelerator", "auto"), get("devices", "auto"))
    if get("precision") is not None:
        checks.choice("precision", str(get("precision")), PRECISIONS)
    for name in ("max_epochs", "max_steps", "num_sanity_val_steps"):
        if get(name) is not None:
            checks.integer(name, get(name), minimum=-1)
    for name in ("min_epochs", "min_steps"):
        if get(name) is not None:
            checks.integer(name, get(name), minimum=0)
    for name in ("check_val_every_n_epoch", "log_every_n_steps", "accumulate_grad_batches"):
        if get(name) is not None:
            checks.integer(name, get(name), minimum=1)
    interval = get("val_check_interval")
    if isinstance(interval, float):
        checks.number("val_check_interval", interval, above=0.0, maximum=1.0)
    elif interval is not None:
        checks.integer("val_check_interval", interval, minimum=1)
    if get("gradient_clip_val") is not None:
        checks.number("gradient_clip_val", get("gradient_clip_val"), minimum=0.0)
    for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches", "limit_predict_batches",
                 "overfit_batches"):
        if get(name) is not None:
            _limit(name, get(name))
    if get("deterministic") not in (None, True, False, "warn"):
        raise ConfigError(f"deterministic={get('deterministic')} must be true, false or warn")
