"""``python -m readlit.bench decode``: peak resident memory of one VAE decode, in temporal tiles and in one window.

Random weights of ``conf/vae/<name>.yaml``, as the latent sequence grows. Each decode runs in a fresh process, so the
peak is its own; the output video itself is subtracted, leaving the decoder's working memory. Linux only.
"""

from __future__ import annotations

import subprocess
import sys

from readlit.resolvers import PROJECT_ROOT

# Runs in a child process: argv = vae yaml, latent frames, tile frames, pixel size. Prints peak growth and output MiB.
_DECODE_CHILD = """
import sys, torch
from omegaconf import OmegaConf
from readlit.vae import VideoVAE

def status(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key + ":"))

torch.set_num_threads(1)
arch = OmegaConf.to_container(OmegaConf.load(sys.argv[1]).architecture)
vae = VideoVAE(architecture=arch, tile_frames=int(sys.argv[3]), tile_context=2)
side = int(sys.argv[4]) // vae.spatial_ratio
z = torch.randn(1, vae.latent_channels, int(sys.argv[2]), side, side)
with torch.no_grad():
    vae.decode(z[:, :, :2])  # the first convolutions allocate kernels and caches once
    open("/proc/self/clear_refs", "w").write("5")  # high-water mark := now, so set-up does not hide the peak
    base = status("VmRSS")
    out = vae.decode(z)
print((status("VmHWM") - base) / 1024, out.numel() * 4 / 2**20)
"""


def decode_peak_mib(vae: str, latent_frames: int, tile_frames: int, size: int) -> tuple[float, float]:
    """Peak RSS growth (MiB) of one decode in a fresh process, and the decoded video's size (MiB)."""
    args = [sys.executable, "-c", _DECODE_CHILD, str(PROJECT_ROOT / "conf" / "vae" / f"{vae}.yaml"),
            str(latent_frames), str(tile_frames), str(size)]
    peak, output = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
    return float(peak), float(output)


def bench_decode(vae: str = "demo", frames: tuple[int, ...] = (9, 33, 65), size: int = 64,
                 tile_frames: int = 4) -> list[dict[str, float]]:
    """Working memory (peak minus output, MiB) of tiled and whole decodes per latent length; Linux only."""
    rows = []
    for latent_frames in frames:
        tiled, output = decode_peak_mib(vae, latent_frames, tile_frames, size)
        whole, _ = decode_peak_mib(vae, latent_frames, 10**6, size)
        rows.append({"latent_frames": latent_frames, "output_mib": output, "tiled_mib": tiled - output,
                     "whole_mib": whole - output})
    return rows
