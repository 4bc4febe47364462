"""Validated request settings: the sampler's fields a client may set, and the server's limits (``conf/serve.yaml``).

A field a request leaves out takes the server's configured sampler (``conf/sampler/ans.yaml`` unless ``sampler.*``
is overridden), so a request with only a seed gets the same video as ``generate`` with that seed and no overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from readlit.sampling.ans_sampler import ANSSampler
from readlit.sampling.cfg import Guidance
from readlit.serve.errors import Rejected


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (config group ``limits``).

    Args:
        max_image_bytes, max_audio_bytes: upload sizes (413 past them).
        max_image_pixels: width x height of an uploaded image before it is decoded (decompression bombs).
        max_audio_seconds: audio duration, uploaded or streamed (422 past it; a live stream is cut there).
        max_steps: Euler steps one request may ask for.
        max_scale: the largest CFG scale one request may ask for.
    """

    max_image_bytes: int = 10_000_000
    max_audio_bytes: int = 50_000_000
    max_image_pixels: int = 40_000_000
    max_audio_seconds: float = 60.0
    max_steps: int = 50
    max_scale: float = 20.0


class SamplerFields(BaseModel):
    """The sampler settings of one request; None takes the server's configured value."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(None, ge=1)
    guidance: Literal["none", "joint", "split"] | None = None
    audio_scale: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    ref_scale: float | None = Field(None, ge=0.0, allow_inf_nan=False)
    seed: int = Field(0, ge=0, lt=2**63)


def one_line(err: ValidationError) -> str:
    """The first problem of a pydantic error as ``name=value: reason`` (or the unknown field's name)."""
    problem = err.errors()[0]
    name = ".".join(str(part) for part in problem["loc"]) or "body"
    if problem["type"] == "extra_forbidden":
        return f"unknown field {name!r}"
    return f"{name}={problem['input']!r}: {problem['msg']}"


def parse_sampler(values: dict[str, Any], base: ANSSampler, limits: Limits) -> tuple[ANSSampler, int]:
    """The sampler and seed ``values`` ask for on top of ``base``; Rejected (422) with one line if they are bad."""
    try:
        fields = SamplerFields.model_validate(values)
    except ValidationError as err:
        raise Rejected(422, one_line(err)) from err
    if fields.steps is not None and fields.steps > limits.max_steps:
        raise Rejected(422, f"steps={fields.steps}: this server takes at most {limits.max_steps}")
    for name in ("audio_scale", "ref_scale"):
        value = getattr(fields, name)
        if value is not None and value > limits.max_scale:
            raise Rejected(422, f"{name}={value}: this server takes at most {limits.max_scale}")
    guidance = Guidance(mode=fields.guidance or base.guidance.mode,
                        audio_scale=base.guidance.audio_scale if fields.audio_scale is None else fields.audio_scale,
                        ref_scale=base.guidance.ref_scale if fields.ref_scale is None else fields.ref_scale)
    return replace(base, steps=fields.steps or base.steps, guidance=guidance), fields.seed
