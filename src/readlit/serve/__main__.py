"""``python -m readlit.serve ckpt=...`` (``readlit-serve``, ``make serve``): the API and the page on uvicorn.

Bad settings (a missing checkpoint, a device this machine lacks, a port in use) stop with one ``error:`` line and
exit code 2 before the server listens.
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import socket
import sys
from pathlib import Path

from readlit.cli import CONFIG_DIR, check_composes, fail, run_task

_MISSING = [name for name in ("fastapi", "uvicorn", "python_multipart") if importlib.util.find_spec(name) is None]
if _MISSING:
    fail(f"readlit.serve needs {', '.join(_MISSING)}: pip install -e '.[serve]' (make install does it)")

import hydra  # noqa: E402
import torch  # noqa: E402
import uvicorn  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from readlit.errors import ConfigError  # noqa: E402
from readlit.generate import check_device  # noqa: E402
from readlit.pipeline import TalkingHeadPipeline  # noqa: E402
from readlit.serve.app import Service, create_app  # noqa: E402
from readlit.serve.jobs import JobQueue  # noqa: E402

log = logging.getLogger(__name__)


def build_service(cfg: DictConfig) -> Service:
    """The model, the configured sampler, the limits and the job queue ``cfg`` describes."""
    device = check_device(cfg.device)
    for key in ("workers", "port"):
        if cfg[key] < 1:
            raise ConfigError(f"{key}={cfg[key]} must be at least 1")
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    pipeline = TalkingHeadPipeline.from_checkpoint(cfg.ckpt, device, ema=cfg.ema, vae_path=cfg.vae_path)
    sampler = pipeline.sampler_for(instantiate(cfg.sampler))
    jobs = JobQueue(Path(cfg.work_dir), cfg.workers, cfg.queue, cfg.keep_seconds, cfg.abandon_seconds)
    return Service(pipeline, sampler, instantiate(cfg.limits), jobs,
                   lookahead=round(cfg.stream.lookahead_seconds * pipeline.sample_rate),
                   idle_seconds=cfg.stream.idle_seconds, sweep_seconds=cfg.sweep_seconds)


def check_port(host: str, port: int) -> None:
    """ConfigError when ``host:port`` cannot be listened on (in use, or not an address of this machine)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            reason = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err.strerror})"
            raise ConfigError(f"port={port} on host={host} {reason}; choose another with port=...") from err


def serve(cfg: DictConfig) -> None:
    """Load the model and serve until interrupted."""
    check_port(cfg.host, cfg.port)
    service = build_service(cfg)
    log.info("serving %s on http://%s:%d (jobs in %s)", cfg.ckpt, cfg.host, cfg.port, cfg.work_dir)
    limit = service.limits.max_image_bytes + 4096  # the portrait arrives as one websocket message
    uvicorn.run(create_app(service), host=cfg.host, port=cfg.port, ws_max_size=limit, log_level="info")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="serve")
def _hydra_main(cfg: DictConfig) -> None:
    run_task(serve, cfg)


def main() -> None:
    """Console entry point."""
    check_composes("serve", sys.argv[1:])
    _hydra_main()


if __name__ == "__main__":
    main()
