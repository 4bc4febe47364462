"""S3FD face detector as joonson/syncnet_python runs it for the tracking mode of Sync-C/D.

Provenance
    Paper: Zhang et al. 2017, "S³FD: Single Shot Scale-invariant Face Detector".
    Original: joonson/syncnet_python ``detectors/s3fd/nets.py`` (``S3FDNet``, ``L2Norm``),
    ``detectors/s3fd/box_utils.py`` (``Detect``, ``PriorBox``, ``decode``, ``nms_``) and
    ``detectors/s3fd/__init__.py`` (``detect_faces``), as ``run_pipeline.py`` calls them.
    Weights: ``sfd_face.pth`` (Oxford VGG's copy; SHA-256 prefix checked on download).
    Checked: tests load a random state dict through :func:`load_s3fd` (the names above, strict check), count
    the priors of each feature map for two input sizes, invert the box coding, run the score floor, NMS and
    ``conf_th`` on hand-made boxes (exactly tied scores included), and find the pixel box of a stand-in
    network's single face. Not checked here
    against the released weights' detections.

Network: VGG16 (conv1_1..fc7, fc6 dilated 6) with L2Norm on conv3_3 / conv4_3 / conv5_3 (initial scales 10, 8,
5), two extra stride-2 blocks, and six 3×3 loc / conf heads on strides 4..128. The first conf head has four
channels: the max of the first three is the background score ("max-out background"), the fourth is the face
score. One square prior per cell, side 16·2^k on stride 4·2^k, variances (0.1, 0.2).

Parameter names are those of ``sfd_face.pth`` (``vgg.<i>``, ``L2Norm3_3.weight``, ``extras.<i>``, ``loc.<i>``,
``conf.<i>``), so the file loads through :func:`readlit.eval.weights.load_state_dict` with a strict key check.

Post-processing (``Detect`` + ``detect_faces``): softmax face score > 0.05, the 5000 best, NMS 0.3, the 750 best
kept; then boxes with score > ``conf_th`` (0.9 in ``run_pipeline.py``), scaled to pixels, and NMS 0.1 across
scales. Equal scores are ordered by a stable sort (:func:`stable_nms`): the reference's unstable ``sort`` /
``argsort`` leaves their order, and so which of two tied overlapping boxes survives, unspecified.

Input (``detect_faces``): the RGB frame resized by 0.25 (INTER_LINEAR) with the BGR means (104, 117, 123)
subtracted from B, G, R. syncnet_python swaps to BGR, subtracts, then swaps back, so the
network sees RGB channel order; we reproduce that (face-alignment's copy feeds BGR instead).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from einops import rearrange
from torch import nn
from torchvision.ops import nms

from readlit.eval.weights import load_state_dict

MEAN_RGB = (123.0, 117.0, 104.0)  # the BGR means (104, 117, 123) as they land on R, G, B
STEPS = (4, 8, 16, 32, 64, 128)
MIN_SIZES = (16, 32, 64, 128, 256, 512)
VARIANCES = (0.1, 0.2)
SCORE_FLOOR = 0.05  # Detect.conf_thresh
NMS_TOP_K = 5000  # candidates entering the first NMS
NMS_IOU = 0.3  # Detect.nms_thresh
KEEP_TOP_K = 750  # Detect.top_k
CONF_TH = 0.9  # run_pipeline.py calls detect_faces(conf_th=0.9)
SCALES = (0.25,)  # run_pipeline.py --facedet_scale
MERGE_IOU = 0.1  # nms_(bboxes, 0.1) over all scales


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (``weight``, initialised to ``scale``)."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> same shape, unit L2 norm over C (eps 1e-10 as the reference) times weight."""
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10
        return x / norm * rearrange(self.weight, "c -> 1 c 1 1")


def _vgg() -> nn.ModuleList:
    """VGG16 conv1_1..conv5_3 + fc6 (dilated) + fc7 as one list; indices match ``vgg.<i>`` of the checkpoint."""
    layers: list[nn.Module] = []
    channels = 3
    # (out channels, convs) per block; the third pool rounds up (ceil_mode), as the reference does.
    for block, (out, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        for _ in range(convs):
            layers += [nn.Conv2d(channels, out, 3, 1, padding=1), nn.ReLU(inplace=True)]
            channels = out
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=block == 2))
    layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
               nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
    return nn.ModuleList(layers)


SOURCE_CHANNELS = (256, 512, 512, 1024, 512, 256)
TAPS = (16, 23, 30)  # vgg indices after conv3_3, conv4_3, conv5_3 (+ReLU): where the L2Norm sources are taken


class S3FD(nn.Module):
    """S3FD: (N, 3, H, W) mean-subtracted RGB -> per-prior box offsets (N, P, 4) and face logits (N, P, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = _vgg()
        self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3 = L2Norm(256, 10), L2Norm(512, 8), L2Norm(512, 5)
        self.extras = nn.ModuleList([nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
                                     nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1)])
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in SOURCE_CHANNELS])
        # Head 0 predicts 3 background scores + 1 face score (max-out background against small-face false positives).
        self.conf = nn.ModuleList([nn.Conv2d(c, 4 if i == 0 else 2, 3, 1, padding=1)
                                   for i, c in enumerate(SOURCE_CHANNELS)])

    def sources(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The six feature maps the heads read, strides 4, 8, 16, 32, 64, 128."""
        norms = (self.L2Norm3_3, self.L2Norm4_3, self.L2Norm5_3)
        out, start = [], 0
        for tap, norm in zip(TAPS, norms, strict=True):
            for layer in self.vgg[start:tap]:
                x = layer(x)
            out.append(norm(x))
            start = tap
        for layer in self.vgg[start:]:
            x = layer(x)
        out.append(x)
        for k, layer in enumerate(self.extras):
            x = torch.relu(layer(x))
            if k % 2 == 1:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
        """x: (N, 3, H, W) -> loc (N, P, 4), conf logits (N, P, 2) [background, face], feature map sizes."""
        locs, confs, sizes = [], [], []
        for i, src in enumerate(self.sources(x)):
            conf = self.conf[i](src)
            if i == 0:
                conf = torch.cat([conf[:, :3].amax(dim=1, keepdim=True), conf[:, 3:]], dim=1)
            locs.append(rearrange(self.loc[i](src), "n c h w -> n (h w) c"))
            confs.append(rearrange(conf, "n c h w -> n (h w) c"))
            sizes.append((src.shape[2], src.shape[3]))
        return torch.cat(locs, 1), torch.cat(confs, 1), sizes


def load_s3fd(path: str | Path) -> S3FD:
    """S3FD from ``sfd_face.pth`` (a plain state dict), strictly key-checked."""
    return load_state_dict(S3FD(), Path(path), "s3fd")


def prior_boxes(image_size: tuple[int, int], feature_sizes: list[tuple[int, int]]) -> torch.Tensor:
    """One square prior per feature-map cell (``PriorBox``), normalised to the image.

    Args:
        image_size: (H, W) of the network input.
        feature_sizes: (h_k, w_k) of the six source maps.

    Returns:
        (P, 4) cx, cy, w, h with P = Σ h_k·w_k, row-major per map. Centres are (j + 0.5)·step / W as the
        reference computes them (step, not the map size, sets the spacing).
    """
    height, width = image_size
    out = []
    for (rows, cols), step, size in zip(feature_sizes, STEPS, MIN_SIZES, strict=True):
        cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) * step / height,
                                (torch.arange(cols) + 0.5) * step / width, indexing="ij")
        wh = torch.tensor([size / width, size / height]).expand(rows * cols, 2)
        out.append(torch.cat([torch.stack([cx.flatten(), cy.flatten()], 1), wh], 1))
    return torch.cat(out).float()


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """(P, 4) offsets on (P, 4) cx, cy, w, h priors -> (P, 4) x1, y1, x2, y2 (SSD decoding, variances 0.1, 0.2)."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], 1)


def encode(boxes: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`decode`: (P, 4) x1, y1, x2, y2 -> (P, 4) offsets against the priors."""
    centre, size = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    return torch.cat([(centre - priors[:, :2]) / (VARIANCES[0] * priors[:, 2:]),
                      torch.log(size / priors[:, 2:]) / VARIANCES[1]], 1)


def stable_nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Indices of the boxes NMS keeps (IoU above ``iou`` suppresses), best first; ties broken by index.

    Boxes are visited in descending score order from a stable sort, so of equal scores the lower index comes
    first and suppresses the others. torchvision's ``nms`` gets that order as strictly decreasing ranks, so its
    own sort never sees a tie.

    Args:
        boxes: (K, 4) x1, y1, x2, y2.
        scores: (K,).
    """
    order = scores.argsort(descending=True, stable=True)
    ranks = torch.arange(len(order), 0, -1, dtype=torch.float32, device=scores.device)
    return order[nms(boxes[order].float(), ranks, iou)]


def select(boxes: torch.Tensor, scores: torch.Tensor, conf_th: float = CONF_TH) -> torch.Tensor:
    """``Detect`` then the ``conf_th`` cut: (P, 4) boxes, (P,) face probabilities -> (K, 5) x1, y1, x2, y2, score.

    Scores > 0.05, the 5000 best, NMS at IoU 0.3, at most 750 kept, then those with score > ``conf_th``.
    Output rows are in descending score order, equal scores by prior index (stable sorts throughout).
    """
    keep = scores > SCORE_FLOOR
    boxes, scores = boxes[keep], scores[keep]
    order = scores.argsort(descending=True, stable=True)[:NMS_TOP_K]
    boxes, scores = boxes[order], scores[order]
    kept = stable_nms(boxes, scores, NMS_IOU)[:KEEP_TOP_K]
    boxes, scores = boxes[kept], scores[kept]
    confident = scores > conf_th
    return torch.cat([boxes[confident], scores[confident, None]], 1)


def preprocess(frame: np.ndarray, scale: float) -> torch.Tensor:
    """(H, W, 3) uint8 RGB frame -> (1, 3, h, w) float input: resized by ``scale`` (INTER_LINEAR), means off."""
    resized = cv2.resize(frame, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    x = torch.from_numpy(resized.astype(np.float32)) - torch.tensor(MEAN_RGB)
    return rearrange(x, "h w c -> 1 c h w")


def detect_frame(net: S3FD, frame: np.ndarray, conf_th: float = CONF_TH, scales: tuple[float, ...] = SCALES,
                 device: torch.device | str = "cpu") -> np.ndarray:
    """Faces in one (H, W, 3) uint8 RGB frame -> (K, 5) float x1, y1, x2, y2 (pixels), score."""
    height, width = frame.shape[:2]
    found = []
    with torch.no_grad():
        for scale in scales:
            x = preprocess(frame, scale).to(device)
            loc, conf, sizes = net(x)
            priors = prior_boxes(tuple(x.shape[2:]), sizes).to(loc.device)
            dets = select(decode(loc[0], priors), conf[0].softmax(-1)[:, 1], conf_th).cpu()
            found.append(dets * torch.tensor([width, height, width, height, 1.0]))
    dets = torch.cat(found)
    dets = dets[stable_nms(dets[:, :4], dets[:, 4], MERGE_IOU)]
    return dets.double().numpy()


def detect(net: S3FD, frames: np.ndarray, conf_th: float = CONF_TH, scales: tuple[float, ...] = SCALES,
           device: torch.device | str = "cpu") -> list[np.ndarray]:
    """Per-frame faces of a (F, H, W, 3) uint8 RGB video: F arrays (K_f, 5) of x1, y1, x2, y2, score."""
    return [detect_frame(net, frame, conf_th, scales, device) for frame in frames]
