"""Every pretrained file the metrics need: where it comes from, where it lives here, how it is checked.

Files live in one folder: the ``READLIT_WEIGHTS`` environment variable, else ``<project>/weights``
(``weights_dir`` in ``conf/eval.yaml`` overrides both). Each file can also be pointed at directly with
``weights.<name>=/path`` in the eval config. A metric whose file is missing is reported as missing; nothing is
ever computed with randomly initialised weights.

    python -m readlit.eval.weights              # list every file, its metric, source, checksum, present or not
    python -m readlit.eval.weights --download   # fetch the missing ones and verify them (exit 2 on failure)

Checksums are SHA-256. Where only a prefix (and suffix) is published, that part is checked.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from readlit.errors import CheckpointError
from readlit.resolvers import PROJECT_ROOT

ENV_KEY = "READLIT_WEIGHTS"


@dataclass(frozen=True)
class WeightFile:
    """One pretrained file: its registry name (config key ``weights.<name>``), file name, source and checksum."""

    name: str
    filename: str
    url: str
    metrics: tuple[str, ...]
    sha256: str | None = None  # full hex, or "prefix…suffix" where only that much is published
    note: str = ""


REGISTRY: dict[str, WeightFile] = {w.name: w for w in (
    WeightFile("inception", "weights-inception-2015-12-05-6726825d.pth",
               "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
               "weights-inception-2015-12-05-6726825d.pth", ("fid",),
               note="torch-fidelity's TF-ported FID Inception; no checksum published"),
    WeightFile("i3d_torchscript", "i3d_torchscript.pt",
               "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1", ("fvd",),
               note="StyleGAN-V's TorchScript I3D (TF-Hub i3d-kinetics-400); mirror: ByteDance/LatentSync-1.5"),
    WeightFile("i3d_pretrained_400", "i3d_pretrained_400.pt",
               "https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt", ("fvd_disco",),
               note="VideoGPT/TATS/DisCo PyTorch I3D state dict (converted from TF-Hub)"),
    WeightFile("syncnet", "syncnet_v2.model",
               "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model", ("sync_c", "sync_d"),
               sha256="961e8696…5442", note="Oxford VGG SyncNet v2 state dict (CC-BY, research use)"),
    WeightFile("s3fd", "sfd_face.pth",
               "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth", ("sync_tracked",),
               sha256="d54a87c2…c491", note="S3FD face detector for the tracking mode of Sync-C/D"),
    WeightFile("deep3d", "epoch_20.pth",
               "https://github.com/Winfredy/SadTalker/releases/download/v0.0.2/epoch_20.pth", ("e_fid",),
               note="Deep3DFaceRecon_pytorch ResNet-50 (key net_recon); official copy on Google Drive"),
    WeightFile("lm3d_std", "similarity_Lm3D_all.mat",
               "https://raw.githubusercontent.com/sicxu/Deep3DFaceRecon_pytorch/master/BFM/similarity_Lm3D_all.mat",
               ("e_fid",), note="Deep3DFaceRecon's standard 3D landmarks for the 5-point alignment"),
    WeightFile("alexnet", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
               ("lpips",), sha256="7be5be79…", note="torchvision AlexNet backbone; LPIPS heads ship with torchmetrics"),
)}


def weights_dir(override: str | Path | None = None) -> Path:
    """The weights folder: ``override``, else $READLIT_WEIGHTS, else ``<project>/weights``."""
    return Path(override or os.environ.get(ENV_KEY) or PROJECT_ROOT / "weights").expanduser()


def local_path(name: str, root: str | Path | None = None, path: str | Path | None = None) -> Path:
    """Where registry file ``name`` is expected: ``path`` when given, else inside :func:`weights_dir`."""
    return Path(path).expanduser() if path else weights_dir(root) / REGISTRY[name].filename


def missing_message(name: str, where: Path) -> str:
    """One line naming the file, where it comes from and which keys point at it."""
    w = REGISTRY[name]
    return (f"{'/'.join(w.metrics)} needs {w.filename}, not found at {where}; get it from {w.url} "
            f"(python -m readlit.eval.weights --download) into ${ENV_KEY} (or weights_dir=...), "
            f"or set weights.{name}=/path/to/{w.filename}")


def require(name: str, root: str | Path | None = None, path: str | Path | None = None) -> Path:
    """The local file for registry entry ``name``; raises CheckpointError (one line) when it is missing."""
    where = local_path(name, root, path)
    if not where.is_file():
        raise CheckpointError(missing_message(name, where))
    return where


def available(names: tuple[str, ...] | list[str], root: str | Path | None = None,
              paths: dict[str, str] | None = None) -> dict[str, bool]:
    """Which of ``names`` are present locally."""
    paths = paths or {}
    return {n: local_path(n, root, paths.get(n)).is_file() for n in names}


def checksum_ok(path: Path, expected: str | None) -> bool:
    """Whether the SHA-256 of ``path`` matches ``expected`` (full, or the published prefix…suffix)."""
    if expected is None:
        return True
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    head, _, tail = expected.partition("…")
    return digest.hexdigest().startswith(head) and digest.hexdigest().endswith(tail)


def download(name: str, root: str | Path | None = None, timeout: float = 60.0) -> Path:
    """Fetch registry file ``name`` into the weights folder (temporary name, verified, then renamed)."""
    w, target = REGISTRY[name], local_path(name, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with urllib.request.urlopen(w.url, timeout=timeout) as response, open(tmp, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        if not checksum_ok(tmp, w.sha256):
            raise CheckpointError(f"{w.filename} from {w.url} failed its SHA-256 check ({w.sha256}); not kept")
        os.replace(tmp, target)
    except OSError as err:
        raise CheckpointError(f"cannot download {w.filename} from {w.url}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return target


def read_state_dict(path: Path, name: str, key: str | None = None) -> dict[str, torch.Tensor]:
    """A tensors-only checkpoint (``torch.load(weights_only=True)``); ``key`` picks a sub-dictionary."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or non-tensor file
        raise CheckpointError(f"{path} is not a readable weights file for {name}: {str(err).splitlines()[0]}") from err
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            raise CheckpointError(f"{path} has no {key!r} entry; is it the {REGISTRY[name].filename} for {name}?")
        state = state[key]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict, so it is not {name} weights")
    return state


def check_keys(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """CheckpointError naming missing and unexpected keys when ``state`` does not fit ``module`` exactly."""
    expected, found = set(module.state_dict()), set(state)
    if expected != found:
        missing, unexpected = sorted(expected - found), sorted(found - expected)
        raise CheckpointError(
            f"{path} does not match the {name} network ({REGISTRY[name].filename}): {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")


def load_state_dict(module: torch.nn.Module, path: Path, name: str, key: str | None = None) -> torch.nn.Module:
    """Load a tensors-only checkpoint into ``module`` with a strict key check; CheckpointError on mismatch."""
    state = read_state_dict(path, name, key)
    check_keys(module, state, path, name)
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path} has wrong tensor shapes for {name}: {' '.join(str(err).split())[:300]}") from err
    return module.eval()


def _listing(root: Path) -> list[str]:
    lines = [f"weights folder: {root} (${ENV_KEY} or weights_dir=...)"]
    for w in REGISTRY.values():
        state = "present" if (root / w.filename).is_file() else "MISSING"
        lines.append(f"  {state:8} {w.name:19} {w.filename:43} for {', '.join(w.metrics)}")
        lines.append(f"           source {w.url}  sha256 {w.sha256 or 'not published'}  {w.note}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """List the metric weights; with --download fetch the missing ones. Exit 2 when a download fails."""
    parser = argparse.ArgumentParser(prog="python -m readlit.eval.weights", description=__doc__.splitlines()[0])
    parser.add_argument("--download", action="store_true", help="download missing files and verify them")
    parser.add_argument("--dir", default=None, help=f"weights folder (default ${ENV_KEY} or <project>/weights)")
    parser.add_argument("--only", nargs="*", default=None, help="registry names to download (default all)")
    args = parser.parse_args(argv)
    root = weights_dir(args.dir)
    failed = []
    if args.download:
        for name in args.only or list(REGISTRY):
            if name not in REGISTRY:
                failed.append(f"unknown weights name {name!r}; known: {', '.join(REGISTRY)}")
            elif not (root / REGISTRY[name].filename).is_file():
                try:
                    download(name, root)
                except CheckpointError as err:
                    failed.append(str(err))
    print("\n".join(_listing(root)))
    for message in failed:
        print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
