"""A content fingerprint of a module's weights, so two codecs never mix unnoticed."""

import hashlib

import torch


def state_fingerprint(module: torch.nn.Module) -> str:
    """sha256 over the module's state (names, shapes, dtypes, values), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
