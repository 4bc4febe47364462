"""HDTF (``data=hdtf``): windows of the clip cache that ``python -m readlit.preprocess data=hdtf`` writes.

The cache holds one clip per HDTF time span (``Radio11_0``, ...), 25 fps 512² face crops from the
official crop windows and 16 kHz mono audio; see :mod:`readlit.data.preprocess.hdtf_layout` for the raw
layouts it is made from and :mod:`readlit.data.av_base` for the batches.
"""

from typing import Any

from readlit.data.av_base import CachedAVDataModule


class HDTFDataModule(CachedAVDataModule):
    """Train / val / test windows of an HDTF cache; arguments as in :class:`CachedAVDataModule`."""

    def __init__(self, root: str, name: str = "hdtf", **kwargs: Any):
        super().__init__(root=root, name=name, **kwargs)
        self.check_latents()
