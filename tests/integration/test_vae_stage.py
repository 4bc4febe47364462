"""The VAE stage end to end: demo_vae trains, checkpoints, exports and logs; vae_finetune_hdtf refuses clearly."""

import functools
import urllib.error
from pathlib import Path

import huggingface_hub.constants
import lightning as L
import pytest
import torch
from hydra.errors import HydraException
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from readlit.checkpoint import load_checkpoint
from readlit.cli import user_error
from readlit.errors import CheckpointError, ConfigError, DataError
from readlit.lit.metrics import LatentMoments
from readlit.lit.terms import MotionL1, MouthMSE
from readlit.lit.vae_module import VAELitModule
from readlit.train import train
from readlit.vae import VideoVAE
from tests.helpers import TINY_SYNTHETIC

# The tiny VAE (106 k params) keeps the plumbing tests fast; the demo VAE itself runs in the slow test.
SHORT_CLIPS = [*TINY_SYNTHETIC, "vae=tiny", "data.num_frames=9", "data.batch_size=4"]
# demo_vae validates every 150 steps across epochs; short runs validate every 2 steps instead.
FEW_BATCHES = ["+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1",
               "trainer.val_check_interval=2"]


def test_fast_dev_run_logs_every_metric(train_cfg):
    metrics, objects = train(train_cfg("experiment=demo_vae", *SHORT_CLIPS, "debug=fdr"))
    assert objects["trainer"].global_step == 1
    for key in ("loss", "l1", "mse", "kl", "mouth", "psnr", "ssim"):
        assert torch.isfinite(torch.tensor(metrics[f"test/{key}"]))
    assert 5.0 < metrics["test/psnr"] < 40.0 and -1.0 <= metrics["test/ssim"] <= 1.0


def test_short_run_checkpoints_exports_and_shows_reconstructions(train_cfg):
    cfg = train_cfg("experiment=demo_vae", *SHORT_CLIPS, *FEW_BATCHES, "trainer.max_epochs=2", "test=false")
    _, objects = train(cfg)
    out = Path(cfg.paths.output_dir)
    model: VAELitModule = objects["model"]

    checkpoint = load_checkpoint(out / "checkpoints" / "last.ckpt", stage="vae")
    assert checkpoint["readlit"]["vae_config"]["latent_channels"] == model.vae.latent_channels
    assert list((out / "checkpoints").glob("best-*.ckpt"))

    exported = VideoVAE(pretrained=str(out / "vae"))
    for key, value in model.vae.state_dict().items():
        torch.testing.assert_close(exported.state_dict()[key].to(value), value, rtol=0, atol=0)
    # the epoch's latent statistics replaced the identity statistics of a fresh VAE
    assert not torch.allclose(exported.model.latents_std, torch.ones_like(exported.model.latents_std))
    torch.testing.assert_close(checkpoint["state_dict"]["vae.model.latents_std"], exported.model.latents_std)

    events = EventAccumulator(str(next((out / "tensorboard").rglob("events.out.tfevents.*")))).Reload()
    assert "val/reconstructions" in events.Tags()["images"]
    image = events.Images("val/reconstructions")[-1]
    assert (image.height, image.width) == (2 * 2 * 64, 5 * 64)  # 2 clips x (input, reconstruction) x 5 frames


def test_runs_without_tensorboard(train_cfg):
    metrics, _ = train(train_cfg("experiment=demo_vae", *SHORT_CLIPS, *FEW_BATCHES, "logger=csv",
                                 "trainer.max_epochs=1"))
    assert "val/psnr" in metrics and "test/psnr" in metrics


def test_latent_moments_are_per_channel():
    moments = LatentMoments(2)
    z = torch.stack([torch.full((3, 1, 2, 2), 1.0), torch.arange(12.0).reshape(3, 1, 2, 2)], dim=1)
    moments.update(z[:1])
    moments.update(z[1:])
    mean, std = moments.compute()
    torch.testing.assert_close(mean, torch.tensor([1.0, 5.5]))
    torch.testing.assert_close(std, torch.tensor([0.0, torch.arange(12.0).std(unbiased=False)]), atol=1e-5, rtol=0)


def _module(cfg, **overrides) -> VAELitModule:
    """Build the configured module; Hydra wraps constructor errors, so the input problem is re-raised."""
    try:
        return instantiate(cfg.model, **overrides)
    except HydraException as err:
        raise err.__cause__ from None


def test_stage_refuses_a_frozen_vae_and_inconsistent_keys(train_cfg):
    cfg = train_cfg("experiment=demo_vae", "vae.frozen=true")
    with pytest.raises(ConfigError, match="vae.frozen=false"):
        _module(cfg)
    cfg = train_cfg("experiment=demo_vae", "model.freeze_encoder=true")
    with pytest.raises(ConfigError, match="freeze_encoder=true keeps the latent space: set update_latent_stats=false"):
        _module(cfg)
    with pytest.raises(ConfigError, match=r"train_frames=12 is not 1\+8k frames"):
        _module(train_cfg("experiment=demo_vae", "model.train_frames=12"))


def test_perceptual_loss_joins_the_sum_and_missing_weights_are_one_line(train_cfg):
    cfg = train_cfg("experiment=demo_vae", "~model.terms.mouth")  # the batches below carry no mouth_mask

    class MeanGap(torch.nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            assert x.shape == (2 * 4, 3, 64, 64)  # batch x perceptual_frames
            return (x - y).abs().mean() * 10

    model = _module(cfg, perceptual=MeanGap, perceptual_weight=0.5)
    model.setup("fit")
    torch.manual_seed(0)
    terms, _ = model.losses(torch.rand(2, 3, 9, 64, 64) * 2 - 1, {})
    expected = terms["l1"] + terms["mse"] + 1e-6 * terms["kl"] + 0.5 * terms["perceptual"]
    torch.testing.assert_close(terms["loss"], expected)
    assert terms["perceptual"] > 0

    def offline() -> torch.nn.Module:
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(CheckpointError, match=r"perceptual=offline could not be built \(URLError") as err:
        _module(cfg, perceptual=offline).setup("fit")
    assert "\n" not in str(err.value) and "set perceptual=null" in str(err.value)


def test_decoder_only_fine_tuning_leaves_the_encoder_alone(train_cfg):
    model = _module(train_cfg("experiment=demo_vae"), freeze_encoder=True, update_latent_stats=False)
    optimizer = model.configure_optimizers()["optimizer"]
    trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert trained == {id(p) for p in model.vae.model.decoder.parameters()}


def test_vae_finetune_hdtf_refuses_without_cache_or_weights(train_cfg, monkeypatch, tmp_path):
    cfg = train_cfg("experiment=vae_finetune_hdtf", "trainer=cpu")  # a GPU trainer would be refused first here
    assert cfg.vae.pretrained == "Lightricks/LTX-Video" and cfg.monitor.metric == "val/psnr"
    with pytest.raises(HydraException) as err:  # instantiate wraps the datamodule's DataError
        train(cfg)
    assert isinstance(err.value.__cause__, DataError)
    assert "data.root=" in user_error(err.value) and "holds no HDTF cache" in user_error(err.value)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(HydraException) as err:
        instantiate(cfg.vae)
    assert isinstance(err.value.__cause__, CheckpointError)
    assert "vae.pretrained='Lightricks/LTX-Video' (subfolder 'vae')" in user_error(err.value)


@pytest.mark.slow
def test_demo_vae_learns(train_cfg):
    """A few minutes of demo_vae: held-out PSNR climbs far above the untrained VAE's."""
    cfg = train_cfg("experiment=demo_vae", "trainer.max_steps=300", "trainer.val_check_interval=150",
                    "data.identities={train:32,val:2,test:4}")
    # The untrained VAE, as train() builds it (same seed), tested directly: train=false refuses a run without a
    # checkpoint, since testing a fresh model is a user's mistake everywhere but here.
    L.seed_everything(cfg.seed)
    model, datamodule = instantiate(cfg.model), instantiate(cfg.data)
    tester = L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    untrained = tester.test(model, datamodule=datamodule, verbose=False)[0]["test/psnr"]
    metrics, _ = train(cfg)
    assert metrics["test/psnr"] > untrained + 4.0


def test_motion_term_compares_frame_changes_only():
    motion_l1 = functools.partial(MotionL1(weight=1.0), batch={})
    video = torch.randn(2, 3, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    assert motion_l1(video + 0.3, video) < 1e-6  # a constant colour shift does not move
    still = video[:, :, :1].expand_as(video)
    expected = video.diff(dim=2).abs().mean()
    torch.testing.assert_close(motion_l1(still, video), expected)
    assert motion_l1(video[:, :, :1], video[:, :, :1]) == 0


def test_mouth_term_counts_only_the_masked_pixels():
    video = torch.zeros(2, 3, 5, 4, 4)
    recon = video.clone()
    recon[:, :, :, 0, 0] = 0.5
    mask = torch.zeros(2, 4, 4)
    mask[:, 1:3, 1:3] = 1.0
    masked_mse = MouthMSE(weight=1.0)
    assert masked_mse(recon, video, {"mouth_mask": mask}) == 0  # the error lies outside the mask
    mask[:, 0, 0] = 1.0
    torch.testing.assert_close(masked_mse(recon, video, {"mouth_mask": mask}), torch.tensor(0.5**2 / 5))  # 1 of 5


def test_mouth_weight_needs_a_mask_and_synthetic_clips_bring_one(train_cfg):
    module = _module(train_cfg("experiment=demo_vae", *SHORT_CLIPS, "model.terms.mouth.weight=2.0"))
    video = torch.zeros(1, 3, 9, 64, 64)
    with pytest.raises(ConfigError, match="mouth_mask"):
        module.losses(video, {})
    terms, _ = module.losses(video, {"mouth_mask": torch.ones(1, 64, 64)})
    torch.testing.assert_close(terms["loss"], sum(module.weights[k] * v for k, v in terms.items() if k != "loss"))
