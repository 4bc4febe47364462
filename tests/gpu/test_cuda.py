"""The GPU tier (``make test-gpu``): mixed precision, fused attention and a training step on CUDA.

Skipped with a reason on machines without CUDA (see tests/conftest.py); CI runs on CPUs, so these run where a GPU
is lent (``make bench-gpu`` runs them too).
"""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from readlit.nn.a2v_dit import A2VDiT
from readlit.train import train
from tests.integration.test_a2v_stage import DEMO_SPEECHAE, FAST, write_speechae_ckpt

pytestmark = pytest.mark.gpu


def _net_and_inputs(dtype: torch.dtype = torch.float32):
    torch.manual_seed(0)
    net = A2VDiT(in_channels=32, num_attention_heads=4, attention_head_dim=32, num_layers=2, audio_dim=32).cuda()
    z = torch.randn(2, 32, 3, 16, 16, device="cuda")
    t = torch.rand(2, 3, device="cuda")
    audio = torch.randn(2, 2, 4, 32, device="cuda")
    return net, z, t, audio


def test_bf16_forward_agrees_with_fp32():
    net, z, t, audio = _net_and_inputs()
    with torch.no_grad():
        reference = net(z, t, audio)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            mixed = net(z, t, audio)
        cast = net.to(torch.bfloat16)(z.bfloat16(), t, audio.bfloat16())
    scale = reference.abs().mean()
    assert (mixed.float() - reference).abs().mean() < 0.02 * scale
    assert (cast.float() - reference).abs().mean() < 0.03 * scale


@pytest.mark.parametrize("backend", [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                                     SDPBackend.CUDNN_ATTENTION])
def test_fused_attention_backends_agree_with_the_math_path(backend):
    net, z, t, audio = _net_and_inputs()
    net = net.to(torch.bfloat16)
    inputs = (z.bfloat16(), t, audio.bfloat16())
    with torch.no_grad():
        with sdpa_kernel(SDPBackend.MATH):
            reference = net(*inputs).float()
        with sdpa_kernel(backend):
            fused = net(*inputs).float()
    assert (fused - reference).abs().mean() < 0.01 * reference.abs().mean()


def test_one_a2v_training_step_on_cuda(train_cfg, tmp_path):
    speechae = write_speechae_ckpt(tmp_path, **DEMO_SPEECHAE)
    cfg = train_cfg("experiment=demo_a2v", *FAST, f"model.speechae_ckpt={speechae}", "trainer=gpu", "debug=fdr")
    metrics, objects = train(cfg)
    assert objects["trainer"].global_step == 1
    assert next(objects["model"].net.parameters()).is_cuda
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))


def _sample(velocity, hoist: bool):
    from readlit.flow.schedule import TimeShift
    from readlit.sampling.ans_sampler import ANSSampler, padded_length
    from readlit.sampling.cfg import Guidance

    sampler = ANSSampler(steps=3, clip_frames=2, guidance=Guidance("split"), shift=TimeShift(mu=0.5), hoist=hoist)
    frames = padded_length(5, 2)
    g = torch.Generator().manual_seed(2)
    z_ref, audio = torch.randn(1, 32, 1, 16, 16, generator=g), torch.randn(1, frames, 4, 32, generator=g)
    noise = torch.randn(1, 32, frames, 16, 16, generator=g)
    with torch.no_grad():
        return sampler.sample(velocity, z_ref.cuda(), audio.cuda(), noise.cuda())


def test_compiled_sampling_with_cuda_graphs_agrees_with_eager():
    """speed.compile + speed.cuda_graphs: one graph replayed at every step and clip, the eager path's latents."""
    from readlit.sampling.speed import SpeedLevers

    net = _net_and_inputs()[0].eval()
    for block in net.transformer_blocks:
        torch.nn.init.normal_(block.attn_audio.to_out[0].weight, std=0.2)
    eager = _sample(net, hoist=True)
    for levers in (SpeedLevers(compile=True), SpeedLevers(compile=True, cuda_graphs=True)):
        fast = _sample(levers.velocity(net), hoist=True)
        assert (fast - eager).norm() / eager.norm() < 1e-4
    mixed = _sample(SpeedLevers(autocast="bfloat16", compile=True, cuda_graphs=True).velocity(net), hoist=True)
    assert (mixed - eager).norm() / eager.norm() < 2e-2


def test_overlapped_decoding_on_cuda_streams_gives_the_same_frames():
    """speed.overlap_decode on a GPU: the sampler runs on its own CUDA stream, handing clips over by events."""
    from readlit.bench.nets import Geometry
    from readlit.bench.stream import random_pipeline, speech
    from readlit.sampling.speed import SpeedLevers
    from tests.unit.test_pipeline import sampler

    pipeline = random_pipeline("tiny", Geometry(clip_frames=3, latent_size=2, audio_tokens=4, audio_dim=32), "tiny",
                               "demo", torch.device("cuda"))
    image, audio = torch.rand(3, 64, 64) * 2 - 1, speech(2.0)
    plain = [video for _, video in pipeline.stream(image, audio, sampler(), torch.Generator().manual_seed(3))]
    overlapped = pipeline.with_speed(SpeedLevers(overlap_decode=True))
    ahead = [video for _, video in overlapped.stream(image, audio, sampler(), torch.Generator().manual_seed(3))]
    assert len(plain) == len(ahead) >= 2
    for a, b in zip(ahead, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
