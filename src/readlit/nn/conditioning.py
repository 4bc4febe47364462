"""Dropping the A2V-DiT's conditions: what condition dropout trains and what classifier-free guidance removes.

A dropped condition is zeros: the reference latent z_R (latent frame 0 of the sequence) and the audio latents C.
Training drops them per sample (:meth:`~readlit.flow.ans.ANSProcess.dropout`); CFG evaluates branches with them
dropped (:mod:`readlit.sampling.cfg`). Both go through :func:`drop_conditions`, so the unconditional input at
sampling is exactly the one training showed.
"""

import torch
from einops import rearrange


def drop_conditions(z: torch.Tensor, audio: torch.Tensor, keep_ref: torch.Tensor,
                    keep_audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero z_R and C of the samples whose keep factor is 0.

    Args:
        z: (B, C, 1 + f, h, w), latent frame 0 the reference z_R.
        audio: (B, f, hw, da) audio latents.
        keep_ref, keep_audio: (B,) 1 to keep the condition, 0 to drop it.

    Returns:
        z and audio of the same shapes, with the dropped conditions zeroed.
    """
    reference = z[:, :, :1] * rearrange(keep_ref, "b -> b 1 1 1 1").to(z.dtype)
    return (torch.cat([reference, z[:, :, 1:]], dim=2),
            audio * rearrange(keep_audio, "b -> b 1 1 1").to(audio.dtype))
