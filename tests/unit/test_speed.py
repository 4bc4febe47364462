"""Speed levers: each one computes the plain path's numbers, exactly or within its stated tolerance."""

import dataclasses

import pytest
import torch

from readlit.errors import ConfigError
from readlit.nn.a2v_dit import A2VDiT
from readlit.sampling.ans_sampler import ANSSampler, padded_length
from readlit.sampling.cfg import Guidance
from readlit.sampling.speed import FastVelocity, SpeedLevers
from readlit.utils.ahead import run_ahead
from tests.unit.test_pipeline import pipeline, sampler  # noqa: F401  (the module-scoped pipeline fixture)

B, C, F, H, W, HW, DA = 2, 8, 3, 4, 4, 3, 6


def _net() -> A2VDiT:
    torch.manual_seed(0)
    net = A2VDiT(in_channels=C, num_attention_heads=2, attention_head_dim=16, num_layers=2, audio_dim=DA).eval()
    for block in net.transformer_blocks:  # a trained audio branch
        torch.nn.init.normal_(block.attn_audio.to_out[0].weight, std=0.2)
    return net


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, C, F, H, W, generator=g), torch.rand(B, F, generator=g),
            torch.randn(B, F - 1, HW, DA, generator=g))


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_plain_levers_leave_the_network_alone_and_bad_values_are_refused():
    net = _net()
    assert SpeedLevers().velocity(net) is net
    assert isinstance(SpeedLevers(autocast="bfloat16").velocity(net), FastVelocity)
    with pytest.raises(ConfigError, match="speed.autocast=float8"):
        SpeedLevers(autocast="float8")
    with pytest.raises(ConfigError, match="speed.sdpa_backend=fused"):
        SpeedLevers(sdpa_backend="fused")
    with pytest.raises(ConfigError, match="set speed.compile=true"):
        SpeedLevers(cuda_graphs=True)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        SpeedLevers(compile=True, cuda_graphs=True).check_device("cpu")
    with pytest.raises(ConfigError, match="sdpa_backend=cudnn needs a CUDA device"):
        SpeedLevers(sdpa_backend="cudnn").check_device("cpu")
    SpeedLevers(sdpa_backend="flash").check_device("cpu")


def test_bf16_autocast_stays_within_bf16_rounding_and_hands_back_float32():
    net, (z, t, audio) = _net(), _inputs()
    fast = SpeedLevers(autocast="bfloat16").velocity(net)
    with torch.no_grad():
        reference = net(z, t, audio)
        mixed = fast(z, t, audio)
        hoisted = fast(z, t, context=fast.prepare(audio, H, W))
    assert mixed.dtype == torch.float32
    assert 1e-4 < _relative(mixed, reference) < 2e-2  # bf16 operands: 1e-3..1e-2, never float32-exact
    torch.testing.assert_close(hoisted, mixed, rtol=0, atol=0)


def test_the_cpu_flash_attention_kernel_equals_the_math_kernel():
    net, (z, t, audio) = _net(), _inputs()
    with torch.no_grad():
        math = SpeedLevers(sdpa_backend="math").velocity(net)(z, t, audio)
        flash = SpeedLevers(sdpa_backend="flash").velocity(net)(z, t, audio)
        plain = net(z, t, audio)
    assert _relative(flash, math) < 1e-5 and _relative(plain, math) < 1e-5


@pytest.mark.slow
def test_the_compiled_dit_samples_what_the_eager_dit_samples():
    """torch.compile (inductor, CPU): the same sampled latents to float32 rounding, hoisted or not."""
    net = _net()
    compiled = SpeedLevers(compile=True).velocity(net)
    frames = padded_length(5, F - 1)
    g = torch.Generator().manual_seed(2)
    z_ref, audio = torch.randn(1, C, 1, H, W, generator=g), torch.randn(1, frames, HW, DA, generator=g)
    noise = torch.randn(1, C, frames, H, W, generator=g)
    for hoist in (False, True):
        sampler_ = ANSSampler(steps=3, clip_frames=F - 1, guidance=Guidance("split"), hoist=hoist,
                              shift=sampler().shift)
        with torch.no_grad():
            eager = sampler_.sample(net, z_ref, audio, noise)
            fast = sampler_.sample(compiled, z_ref, audio, noise)
        assert _relative(fast, eager) < 1e-5


def test_overlapped_decoding_streams_exactly_the_same_frames(pipeline):  # noqa: F811
    image, audio = torch.rand(3, 32, 32) * 2 - 1, torch.randn(16000 * 2) * 0.1
    overlapped = pipeline.with_speed(SpeedLevers(overlap_decode=True))
    assert overlapped.overlap_decode and not pipeline.overlap_decode and overlapped.velocity is pipeline.velocity
    plain = list(pipeline.stream(image, audio, sampler(), torch.Generator().manual_seed(3)))
    ahead = list(overlapped.stream(image, audio, sampler(), torch.Generator().manual_seed(3)))
    assert len(plain) >= 3 and [span for span, _ in ahead] == [span for span, _ in plain]
    for (_, a), (_, b) in zip(ahead, plain, strict=True):
        assert torch.equal(a, b)


def test_run_ahead_keeps_order_raises_the_producers_error_and_stops_when_closed():
    produced = []

    def items(fail: bool):
        for i in range(5):
            produced.append(i)
            if fail and i == 2:
                raise RuntimeError("clip 2 broke")
            yield (i, torch.full((2,), float(i)))

    assert [i for i, _ in run_ahead(items(False), torch.device("cpu"))] == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError, match="clip 2 broke"):
        list(run_ahead(items(True), torch.device("cpu")))
    produced.clear()
    stream = run_ahead(items(False), torch.device("cpu"))
    assert next(stream)[0] == 0
    stream.close()
    assert produced[:2] == [0, 1] and len(produced) <= 3  # at most one item ahead of the consumer, then stopped


def test_the_fast_pipeline_keeps_its_plain_pipeline_unchanged(pipeline):  # noqa: F811
    fast = pipeline.with_speed(SpeedLevers(sdpa_backend="math"))
    assert isinstance(fast.velocity, FastVelocity) and fast.velocity.net is pipeline.velocity
    assert dataclasses.replace(fast, velocity=pipeline.velocity, overlap_decode=False) == pipeline
