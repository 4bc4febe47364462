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


@pytest.mark.parametrize("backend", [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION])
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
