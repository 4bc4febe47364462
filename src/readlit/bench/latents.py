"""``python -m readlit.bench latents``: A2V-DiT training steps fed on the fly vs from a latent cache.

The training steps (forward, backward, AdamW) are fed by a datamodule that renders or reads frames and encodes them
with the VAE on the fly, then by the same datamodule reading a latent cache (:mod:`readlit.data.latent_cache`) built
here first. Any experiment and overrides may be given, e.g.
``python -m readlit.bench latents --experiment demo_a2v -- vae=local vae.pretrained=DIR``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.data.preprocess.latents import build_latent_cache
from readlit.utils.compose import compose_app

# The audio encoder does not change the data path being compared; the linear one needs no stage-1 checkpoint.
# Cached latents carry no mouth_mask, so the mouth-weighted loss is off for both timings.
DEFAULTS = ["model.audio_encoder=linear", "model.speechae_ckpt=null", "data.identities={train:4,val:1,test:1}",
            "data.num_workers=0", "model.weighting=null"]


def time_steps(module: Any, datamodule: Any, steps: int, warmup: int = 2) -> float:
    """Seconds per training step (data loading included), after ``warmup`` untimed steps."""
    optimizer = module.configure_optimizers()["optimizer"]
    module.train()
    batches = iter(datamodule.train_dataloader())
    elapsed = 0.0
    for step in range(warmup + steps):
        start = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(datamodule.train_dataloader())
            batch = next(batches)
        loss = module.training_step(batch, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= warmup:
            elapsed += time.perf_counter() - start
    return elapsed / steps


def bench_latents(experiment: str, overrides: list[str], steps: int) -> dict[str, float]:
    """s/step on the fly and from a latent cache, and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cfg = compose_app("train", [f"experiment={experiment}", *DEFAULTS, *overrides], out)
        module = instantiate(cfg.model)
        module.log_dict = module.log = lambda *args, **kwargs: None  # no trainer attached
        frames = instantiate(OmegaConf.merge(cfg.data, {"return_video": True, "latents": None}))
        frames.setup("fit")
        settings = {"vae": {"fingerprint": module.vae.fingerprint()}, "data": frames.item_settings()}
        build_latent_cache(frames, module.vae, out / "latents", ["train"], 64, cfg.data.batch_size, "cpu",
                           settings, progress=False)
        cached = instantiate(OmegaConf.merge(cfg.data, {"latents": str(out / "latents")}))
        cached.setup_latents(("train",))
        on_the_fly = time_steps(module, frames, steps)
        from_cache = time_steps(module, cached, steps)
    return {"on_the_fly_s_per_step": on_the_fly, "cached_s_per_step": from_cache, "speedup": on_the_fly / from_cache}
