"""Start the A2V-DiT from LTX-Video transformer weights (diffusers ``LTXVideoTransformer3DModel``), by name.

The checkpoint is a Hugging Face id (e.g. ``Lightricks/LTX-Video`` with subfolder ``transformer``) or a local
folder written by ``save_pretrained``; only safetensors are read. The key check is strict: every LTX weight
must land on an A2V-DiT parameter of the same shape, and the only parameters left without a weight are the new
ones (the audio branch, the learned null text context). With ``text="off"`` LTX's text branch is dropped, and
the report says so.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from readlit.errors import HUB_ID, CheckpointError, ConfigError
from readlit.nn.a2v_dit import A2VDiT

log = logging.getLogger(__name__)

NEW = ("audio_projection.", ".attn_audio.", "null_text")   # parameters LTX does not have
TEXT = ("caption_projection.", ".attn2.")                  # LTX parameters that text="off" drops
# diffusers config keys that must have these values for the A2V-DiT to compute what LTX computes
FIXED = {"patch_size": 1, "patch_size_t": 1, "activation_fn": "gelu-approximate", "qk_norm": "rms_norm_across_heads",
         "attention_bias": True, "attention_out_bias": True}
SHAPE = ("in_channels", "out_channels", "num_attention_heads", "attention_head_dim", "num_layers",
         "cross_attention_dim", "caption_channels", "norm_eps", "norm_elementwise_affine")


@dataclass
class LoadReport:
    """What loading LTX weights left new and what it dropped."""

    loaded: int
    new: list[str]
    dropped: list[str]

    def __str__(self) -> str:
        def summary(keys: list[str]) -> str:
            groups = sorted({_group(key) for key in keys})
            return f"{len(keys)} tensors ({', '.join(groups)})" if keys else "none"

        return (f"loaded {self.loaded} LTX tensors; new (fresh init): {summary(self.new)}; "
                f"dropped: {summary(self.dropped)}")


def _group(key: str) -> str:
    """The module a key belongs to, block numbers as ``*``: transformer_blocks.*.attn_audio."""
    key = re.sub(r"\.\d+\.", ".*.", key)
    for part in NEW + TEXT:
        if part in key:
            return key[: key.index(part) + len(part)].strip(".")
    return key


def locate(pretrained: str, subfolder: str | None, key: str) -> Path:
    """The local folder holding config.json and the safetensors weights (downloaded for a hub id)."""
    where = f"{key}={pretrained!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")
    local = Path(pretrained).expanduser()
    if local.is_dir():
        folder = local / subfolder if subfolder else local
    elif HUB_ID.match(pretrained):
        from huggingface_hub import snapshot_download

        prefix = f"{subfolder}/" if subfolder else ""
        try:
            root = snapshot_download(pretrained, allow_patterns=[f"{prefix}*.json", f"{prefix}*.safetensors"])
        except Exception as err:  # offline, unknown id, no access: one actionable line
            raise CheckpointError(
                f"LTX transformer checkpoint {where} cannot be fetched from https://huggingface.co/{pretrained} "
                f"({type(err).__name__}); on a machine with network run LTXVideoTransformer3DModel.from_pretrained"
                f"(ID, subfolder=...).save_pretrained(DIR) and set {key}=DIR and the subfolder to null") from err
        folder = Path(root) / (subfolder or "")
    else:
        raise CheckpointError(f"LTX transformer checkpoint {where} not found: no such folder; give a folder written "
                              f"by LTXVideoTransformer3DModel.save_pretrained or a Hugging Face id such as "
                              f"Lightricks/LTX-Video with subfolder transformer")
    if not (folder / "config.json").is_file() or not list(folder.glob("*.safetensors")):
        raise CheckpointError(f"LTX transformer checkpoint {where}: {folder} has no config.json and *.safetensors "
                              f"(re-export it with save_pretrained(..., safe_serialization=True))")
    return folder


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the (possibly sharded) safetensors checkpoint in ``folder``."""
    weights: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        weights.update(load_file(file))
    return weights


def net_kwargs(ltx_config: dict[str, Any], where: str) -> dict[str, Any]:
    """The A2V-DiT arguments that a diffusers LTX config fixes; ConfigError for a variant this block is not."""
    for name, value in FIXED.items():
        if name in ltx_config and ltx_config[name] != value:
            raise CheckpointError(f"{where}: {name}={ltx_config[name]!r} is not supported (the A2V-DiT is built "
                                  f"for {name}={value!r})")
    return {name: ltx_config[name] for name in SHAPE if name in ltx_config}


def load_ltx_weights(net: A2VDiT, weights: dict[str, torch.Tensor], where: str) -> LoadReport:
    """Copy LTX ``weights`` into ``net`` by name with the strict check of the module docstring."""
    own = net.state_dict()
    dropped = [k for k in weights if k not in own and net.text == "off" and any(p in k for p in TEXT)]
    unexpected = [k for k in weights if k not in own and k not in dropped]
    new = [k for k in own if k not in weights and any(p in k for p in NEW)]
    missing = [k for k in own if k not in weights and k not in new]
    wrong = [f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in weights
             if k in own and weights[k].shape != own[k].shape]
    problems = {"missing": missing, "unexpected": unexpected, "shape mismatch": wrong}
    if any(problems.values()):
        summary = "; ".join(f"{name}: {len(keys)} (e.g. {keys[0]})" for name, keys in problems.items() if keys)
        raise CheckpointError(f"{where} does not match the A2V-DiT ({summary})")
    net.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)
    return LoadReport(loaded=len(weights) - len(dropped), new=new, dropped=dropped)


def load_ltx_transformer(pretrained: str, subfolder: str | None = "transformer", in_channels: int | None = None,
                         audio_dim: int = 128, key: str = "model.net.pretrained", **kwargs: Any) -> A2VDiT:
    """An A2V-DiT shaped like the LTX checkpoint, with its weights and a fresh audio branch.

    Args:
        pretrained: Hugging Face id or local ``save_pretrained`` folder.
        subfolder: the transformer's folder inside ``pretrained`` (``transformer`` in LTX pipeline repos).
        in_channels: latent channels the stage's VAE gives; must match the checkpoint.
        audio_dim: da of the audio latents.
        key: the config key that names ``pretrained``, quoted in errors.
        kwargs: further A2V-DiT arguments LTX has no say in (text mode, RoPE scales, checkpointing).

    Raises:
        CheckpointError: the checkpoint is missing, unreadable or does not match.
    """
    folder = locate(pretrained, subfolder, key)
    where = f"LTX transformer checkpoint {key}={pretrained!r} ({folder})"
    shape = net_kwargs(json.loads((folder / "config.json").read_text()), where)
    if in_channels is not None and shape.get("in_channels", in_channels) != in_channels:
        raise ConfigError(f"{where} takes {shape['in_channels']} latent channels; the VAE gives {in_channels}")
    net = A2VDiT(**shape, audio_dim=audio_dim, **kwargs)
    report = load_ltx_weights(net, read_weights(folder), where)
    log.info("%s: %s", where, report)
    return net
