"""The evaluation metrics as torchmetrics objects: states that sum across processes, ``update`` then ``compute``.

Only metric classes and the arithmetic of their scores belong here: the shared float64 Fréchet distance and
its base (``frechet``), FID, FVD (its clip protocols), Sync-C/D (``sync``), E-FID, PSNR/SSIM/LPIPS
(``pixel``) and the synthetic mouth-sync score (``mouth_sync``). The networks they run and those networks'
preprocessing live in :mod:`readlit.eval.networks`.
"""
