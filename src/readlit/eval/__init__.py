"""Evaluation: metrics as torchmetrics objects and their feature networks.

frechet (shared float64 Fréchet distance), fid, fvd (+ i3d), syncnet (+ mfcc), efid, pixel (PSNR/SSIM/LPIPS),
mouth_sync / mouth_sync_metric (synthetic lip sync), weights (the pretrained files: ``python -m
readlit.eval.weights``), report (JSON + Markdown table). The folder-scoring driver is ``python -m
readlit.evaluate``.
"""
