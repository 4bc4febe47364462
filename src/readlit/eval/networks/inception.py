"""The FID Inception-v3 (pool3 features), loaded from a local file into torch-fidelity's own network.

Provenance
    Paper: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium" (FID), on Szegedy et al. 2016's Inception-v3 as TensorFlow released it (2015-12-05).
    Original: toshas/torch-fidelity ``torch_fidelity/feature_extractor_inceptionv3.py``
    (``FeatureExtractorInceptionV3``, "inception-v3-compat"): the TF-ported FID Inception with 1008 classes
    and the FID pooling patches. readlit does not re-implement it; it builds torch-fidelity's class.
    Weights: ``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity's release; no checksum published).
    Preprocessing (inside torch-fidelity): uint8 RGB, TF1 ``resize_bilinear`` to 299² (no antialias),
    (x − 128)/128; the same numbers as torchmetrics' FID with ``antialias=False``.
    Checked: tests save a random copy of that exact architecture and load it back through this function
    (strict keys, tensors-only file). Not checked here against the released weights' outputs.
"""

from __future__ import annotations

from pathlib import Path

from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

from readlit.errors import CheckpointError
from readlit.eval.weights import read_state_dict

POOL3 = 2048


def load_inception(path: str | Path) -> FeatureExtractorInceptionV3:
    """torch-fidelity's FID Inception (pool3 output) from a local weights file; CheckpointError if it does not fit."""
    # torch-fidelity unpickles the file; reading it tensors-only first makes sure nothing else is in it.
    read_state_dict(Path(path), "inception")
    try:
        return FeatureExtractorInceptionV3("inception-v3-compat", [str(POOL3)],
                                           feature_extractor_weights_path=str(path))
    except RuntimeError as err:  # strict load_state_dict: wrong keys or shapes
        first = " ".join(str(err).split())[:300]
        raise CheckpointError(f"{path} does not match the FID Inception (inception weights): {first}") from err
