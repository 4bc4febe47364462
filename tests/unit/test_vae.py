"""readlit.vae: loading (same path as the real checkpoint), frame rule, causality, normalisation, tiles."""

import json

import huggingface_hub.constants
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from readlit.errors import CheckpointError, ConfigError
from readlit.resolvers import PROJECT_ROOT
from readlit.vae import VideoVAE, temporal_tiles

CONF = PROJECT_ROOT / "conf" / "vae"
TINY = OmegaConf.to_container(OmegaConf.load(CONF / "tiny.yaml").architecture)
# Timestep-conditioned like LTX 0.9.1: residual upsampling, each decoder block doubling the channels.
TINY_091 = {**TINY, "block_out_channels": [8, 8, 8], "decoder_block_out_channels": [8, 16, 32],
            "layers_per_block": [1, 1, 1, 1], "decoder_layers_per_block": [1, 1, 1, 1],
            "spatio_temporal_scaling": [True, True, True], "decoder_spatio_temporal_scaling": [True, True, True],
            "down_block_types": ["LTXVideoDownBlock3D"] * 3, "downsample_type": ["conv"] * 3,
            "decoder_inject_noise": [False] * 4, "upsample_residual": [True] * 3, "upsample_factor": [2] * 3,
            "timestep_conditioning": True}


def tiny(**kwargs) -> VideoVAE:
    return VideoVAE(architecture=TINY, logvar_init=-8.0, **kwargs)


def video(frames: int = 17, size: int = 64, batch: int = 2, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, frames, size, size, generator=generator) * 2 - 1


@pytest.fixture(scope="module")
def vae() -> VideoVAE:
    model = tiny()
    generator = torch.Generator().manual_seed(1)
    model.set_latent_stats(torch.randn(8, generator=generator), torch.rand(8, generator=generator) + 0.5)
    return model


# ----------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_random_configs_keep_the_frame_rule(name):
    vae = instantiate(OmegaConf.load(CONF / f"{name}.yaml"))
    assert vae.temporal_ratio == 8 and vae.frozen and not vae.training
    z = vae.encode(video(frames=9, batch=1))
    assert z.shape == (1, vae.latent_channels, 2, 64 // vae.spatial_ratio, 64 // vae.spatial_ratio)
    assert vae.decode(z).shape == (1, 3, 9, 64, 64)


def test_tiny_has_ltx_ratios_and_real_configs_name_their_checkpoints():
    assert (tiny().spatial_ratio, tiny().temporal_ratio) == (32, 8)
    real = {name: OmegaConf.load(CONF / f"{name}.yaml") for name in ("ltx_0_9_0", "ltx_0_9_1")}
    assert real["ltx_0_9_0"].pretrained == "Lightricks/LTX-Video" and real["ltx_0_9_0"].subfolder == "vae"
    assert real["ltx_0_9_0"].decode_timestep is None
    assert (real["ltx_0_9_1"].decode_timestep, real["ltx_0_9_1"].decode_noise_scale) == (0.05, 0.025)
    assert all(cfg.architecture is None for cfg in real.values())


def test_exactly_one_source_and_consistent_decode_keys():
    with pytest.raises(ConfigError, match="^pretrained=.*: give exactly one of pretrained"):
        VideoVAE()
    with pytest.raises(ConfigError, match="^pretrained=.*: give exactly one of pretrained"):
        VideoVAE(pretrained="x", architecture=TINY)
    with pytest.raises(ConfigError, match="^decode_timestep=None but this VAE.s decoder is timestep-conditioned"):
        VideoVAE(architecture=TINY_091)
    with pytest.raises(ConfigError, match="not timestep-conditioned"):
        VideoVAE(architecture=TINY, decode_timestep=0.05)
    with pytest.raises(ConfigError, match="^architecture=.* is not a valid AutoencoderKLLTXVideo config"):
        VideoVAE(architecture={**TINY, "no_such_argument": 1})


def test_logvar_init_starts_every_log_variance_there():
    _, logvar = VideoVAE(architecture=TINY, logvar_init=-8.0).encode_moments(video(frames=9, batch=1))
    torch.testing.assert_close(logvar, torch.full_like(logvar, -8.0))


# ----------------------------------------------------------------------------------------------- loading


def test_save_pretrained_loads_through_the_real_checkpoint_path(vae, tmp_path):
    """A tiny VAE saved like the hub repo (repo/vae/...) loads with pretrained + subfolder, bit for bit."""
    folder = vae.save_pretrained(tmp_path / "repo" / "vae")
    assert (folder / "config.json").is_file() and (folder / "diffusion_pytorch_model.safetensors").is_file()
    assert not list(tmp_path.glob("repo/.*"))  # no temporary folders left behind
    loaded = VideoVAE(pretrained=str(tmp_path / "repo"), subfolder="vae")
    for key, value in vae.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    x = video()
    torch.testing.assert_close(loaded.encode(x), vae.encode(x), rtol=0, atol=0)
    assert loaded.frozen and not any(p.requires_grad for p in loaded.parameters())


def test_save_pretrained_replaces_an_existing_export(vae, tmp_path):
    tiny(seed=5).save_pretrained(tmp_path / "vae")
    vae.save_pretrained(tmp_path / "vae")
    loaded = VideoVAE(pretrained=str(tmp_path / "vae"))
    torch.testing.assert_close(loaded.model.latents_std, vae.model.latents_std, rtol=0, atol=0)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_missing_local_checkpoint_names_path_source_and_key(tmp_path):
    missing = tmp_path / "nowhere" / "vae"
    with pytest.raises(CheckpointError) as err:
        VideoVAE(pretrained=str(missing))
    message = _one_line(err)
    assert message.startswith(f"pretrained='{missing}': no such VAE folder")
    assert "save_pretrained" in message and "Lightricks/LTX-Video" in message


def test_missing_hub_checkpoint_offline_names_id_source_and_key(monkeypatch, tmp_path):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        VideoVAE(pretrained="Lightricks/LTX-Video", subfolder="vae")
    message = _one_line(err)
    assert message.startswith("pretrained='Lightricks/LTX-Video' (subfolder 'vae'): cannot load")
    assert "https://huggingface.co/Lightricks/LTX-Video" in message


def test_folder_without_weights_or_with_other_shapes_is_refused(vae, tmp_path):
    folder = vae.save_pretrained(tmp_path / "vae")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "latent_channels": 16}))
    with pytest.raises(CheckpointError, match=f"^pretrained='{folder}'"):
        VideoVAE(pretrained=str(folder))
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="cannot load the VAE from"):
        VideoVAE(pretrained=str(folder))


def test_logvar_init_is_refused_for_pretrained_weights(vae, tmp_path):
    with pytest.raises(ConfigError, match="^logvar_init=-8.0 initialises a random VAE"):
        VideoVAE(pretrained=str(vae.save_pretrained(tmp_path / "vae")), logvar_init=-8.0)


# ---------------------------------------------------------------------------------------- frame rule


@pytest.mark.parametrize("frames", [8, 16, 18, 32])
def test_frame_counts_off_the_rule_are_refused(vae, frames):
    with pytest.raises(ConfigError, match=rf"F={frames} is not 1\+8k frames") as err:
        vae.encode(video(frames=frames, batch=1))
    lower = 1 + 8 * ((frames - 1) // 8)
    assert f"use {lower} or {lower + 8}" in str(err.value)


@pytest.mark.parametrize("size", [48, 80, 16])
def test_sizes_off_the_spatial_ratio_are_refused(vae, size):
    with pytest.raises(ConfigError, match=rf"{size}x{size} is not a multiple of the VAE's spatial compression 32"):
        vae.encode(video(frames=9, size=size, batch=1))


def test_wrong_layouts_are_refused(vae):
    with pytest.raises(ConfigError, match=r"\(B, 3, F, H, W\)"):
        vae.encode(torch.zeros(1, 9, 3, 64, 64))
    with pytest.raises(ConfigError, match=r"\(B, 8, f, h, w\)"):
        vae.decode(torch.zeros(1, 4, 2, 2, 2))
    with pytest.raises(ConfigError, match=r"\(B, 3, H, W\)"):
        vae.encode_image(torch.zeros(1, 3, 1, 64, 64))


# ---------------------------------------------------------------------------- causality, normalisation


def test_reference_latent_equals_frame_zero_of_a_causal_encode(vae):
    clip = video(frames=25)
    reference = vae.encode_image(clip[:, :, 0])
    assert reference.shape == (2, 8, 1, 2, 2)
    torch.testing.assert_close(reference, vae.encode(clip)[:, :, :1], rtol=0, atol=1e-5)
    # and frame 0 really is only frame 0: changing later frames leaves it alone
    changed = clip.clone()
    changed[:, :, 1:] = -changed[:, :, 1:]
    torch.testing.assert_close(vae.encode(changed)[:, :, :1], reference, rtol=0, atol=1e-5)


def test_latents_are_normalised_with_the_checkpoint_statistics(vae):
    x = video(frames=9)
    mean, _ = vae.encode_moments(x)
    stats = (vae.model.latents_mean[None, :, None, None, None], vae.model.latents_std[None, :, None, None, None])
    torch.testing.assert_close(vae.encode(x), (mean - stats[0]) / stats[1])
    z = vae.encode(x)
    torch.testing.assert_close(vae.decode(z), vae.decode_raw(mean), rtol=0, atol=1e-5)


def test_sampling_uses_the_posterior_variance(vae):
    x = video(frames=9, batch=1)
    sampled = vae.encode(x, sample=True, generator=torch.Generator().manual_seed(0))
    spread = (sampled - vae.encode(x)) * vae.model.latents_std[None, :, None, None, None]
    assert 0.5 * 2.7e-3 < spread.std() < 2 * 1.9e-2  # std of exp(-8 / 2) = 0.018


# ------------------------------------------------------------------------------------ temporal tiles


@pytest.mark.parametrize("frames, tile, context", [(1, 4, 1), (6, 2, 1), (9, 4, 2), (17, 5, 3)])
def test_tiles_cover_every_pixel_frame_once_with_bounded_windows(frames, tile, context):
    tiles = temporal_tiles(frames, tile, context, ratio=8)
    covered = [i for t in tiles for i in range(t.pixels.start, t.pixels.stop)]
    assert covered == list(range(1 + 8 * (frames - 1)))
    for t in tiles:
        window = t.latents.stop - t.latents.start
        assert window <= tile + 2 * context
        assert t.keep.stop - t.keep.start == t.pixels.stop - t.pixels.start
        assert t.keep.stop <= 1 + 8 * (window - 1)


def test_tiles_need_context():
    with pytest.raises(ConfigError, match="^tile_context=0 must be at least 1"):
        temporal_tiles(5, 2, 0, 8)


def test_tiled_decode_equals_untiled_when_the_context_covers_the_receptive_field():
    """The tiny decoder's temporal receptive field is about 9 latent frames each way (measured)."""
    vae = tiny(tile_frames=4, tile_context=10)
    z = torch.randn(1, 8, 30, 1, 1, generator=torch.Generator().manual_seed(0))
    assert len(temporal_tiles(30, 4, 10, 8)) == 8
    with torch.no_grad():
        torch.testing.assert_close(vae.decode(z), vae.decode_raw(z), rtol=0, atol=1e-5)


def test_tiled_decode_error_shrinks_with_context():
    z = torch.randn(1, 8, 12, 1, 1, generator=torch.Generator().manual_seed(0))
    errors = []
    with torch.no_grad():
        whole = tiny().decode_raw(z)
        for context in (1, 3, 6):
            errors.append((tiny(tile_frames=2, tile_context=context).decode(z) - whole).abs().max().item())
    assert errors[0] > errors[1] > errors[2]


def test_decoder_never_sees_more_than_one_window(monkeypatch):
    vae = tiny(tile_frames=3, tile_context=2)
    seen = []
    decoder_forward = vae.model.decoder.forward
    monkeypatch.setattr(vae.model.decoder, "forward", lambda z, temb=None: seen.append(z.shape[2])
                        or decoder_forward(z, temb))
    with torch.no_grad():
        out = vae.decode(torch.zeros(1, 8, 20, 1, 1))
    assert out.shape == (1, 3, 153, 32, 32)
    assert max(seen) == 3 + 2 * 2 and len(seen) == 7


def test_timestep_conditioned_decoder_mixes_noise_once_for_all_tiles():
    vae = VideoVAE(architecture=TINY_091, decode_timestep=0.05, decode_noise_scale=0.025, tile_frames=2,
                   tile_context=10)
    z = torch.randn(1, 8, 6, 1, 1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tiled = vae.decode(z, generator=torch.Generator().manual_seed(3))
        noise = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
        whole = vae.decode_raw(0.975 * vae.denormalize(z) + 0.025 * noise)
        other = vae.decode(z, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    assert (other - tiled).abs().max() > 1e-4


def test_frozen_vae_stays_in_eval_mode_and_a_trainable_one_trains():
    frozen = tiny()
    frozen.train()
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    trainable = tiny(frozen=False)
    trainable.train()
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())


# -------------------------------------------------------------------------------------------- memory


def _largest_activation(latent_frames: int, tile_frames: int) -> int:
    """Elements in the largest tensor any decoder layer produces while decoding ``latent_frames`` frames."""
    arch = OmegaConf.to_container(OmegaConf.load(CONF / "demo.yaml").architecture)
    vae = VideoVAE(architecture=arch, tile_frames=tile_frames, tile_context=2)
    largest = [0]

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor):
            largest[0] = max(largest[0], output.numel())

    hooks = [m.register_forward_hook(record) for m in vae.model.decoder.modules()]
    side = 64 // vae.spatial_ratio
    with torch.no_grad():
        vae.decode(torch.zeros(1, vae.latent_channels, latent_frames, side, side))
    for hook in hooks:
        hook.remove()
    return largest[0]


def test_tiled_decode_working_set_stays_flat_as_the_sequence_grows():
    """What tiling bounds, measured exactly: the decoder's largest intermediate tensor (demo VAE, 64x64).

    Resident-memory peaks are what users feel, but the allocator makes them too noisy to assert on
    (60-126 MiB for the same tiled decode across runs); the activation size is the deterministic cause.
    """
    tiled = [_largest_activation(f, 4) for f in (17, 33, 65)]
    whole = [_largest_activation(f, 10_000) for f in (17, 33, 65)]
    assert tiled[0] == tiled[1] == tiled[2]
    assert whole[2] > 3 * whole[0] and whole[2] > 4 * tiled[2]
