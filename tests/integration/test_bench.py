"""python -m readlit.bench latents|decode: both paths are measured in one run, not assumed."""

import json
import math

import pytest
import torch

from readlit.bench.decode import bench_decode
from readlit.bench.latents import bench_latents


@pytest.mark.slow
def test_latent_bench_times_both_paths():
    result = bench_latents("demo_a2v", ["data.batch_size=2", "data.session_seconds=2"], steps=1)
    assert result["on_the_fly_s_per_step"] > 0 and result["cached_s_per_step"] > 0
    assert result["speedup"] == pytest.approx(result["on_the_fly_s_per_step"] / result["cached_s_per_step"])


@pytest.mark.slow
def test_decode_bench_measures_both_decodes():
    """Runs the child processes and reads their numbers; flatness itself is asserted exactly in test_vae."""
    rows = bench_decode(frames=(3, 9))
    assert [row["latent_frames"] for row in rows] == [3, 9]
    for row in rows:
        frames = 1 + 8 * (row["latent_frames"] - 1)
        assert row["output_mib"] == pytest.approx(3 * frames * 64 * 64 * 4 / 2**20)
        assert math.isfinite(row["tiled_mib"]) and math.isfinite(row["whole_mib"])


def _rows(path):
    import json

    return {row["measure"]: row["value"] for row in json.loads(path.read_text())["rows"]}


TINY = ["--size", "tiny", "--clip-frames", "3", "--latent-size", "2", "--audio-tokens", "2", "--repeats", "1",
        "--steps", "1"]


def test_sampler_and_backbone_benches_write_their_tables(tmp_path, capsys):
    from readlit.bench.cli import main

    main(["sampler", *TINY, "--no-levers", "--out", str(tmp_path)])
    main(["backbone", *TINY, "--no-levers", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| Split-CFG: 3 sequential forwards / 1 batched forward |" in printed
    sampler, backbone = _rows(tmp_path / "sampler.json"), _rows(tmp_path / "backbone.json")
    assert (tmp_path / "sampler.md").read_text().startswith("### sampler: A2V-DiT tiny")
    for value in (sampler["Split-CFG / Joint-CFG per step"], sampler["ANS: s per latent frame, 8 clips / 1 clip"],
                  backbone["forward FLOP/s / GEMM FLOP/s"]):
        assert math.isfinite(value) and value > 0
    # the FLOP count is the meta counter's, exactly: 3 sequences of one clip
    from readlit.bench.nets import Geometry, flops_per_forward

    geometry = Geometry(clip_frames=3, latent_size=2, audio_tokens=2)
    assert backbone["FLOPs of one Split-CFG forward (3 sequences)"] == flops_per_forward("tiny", geometry, 3) / 1e9


def test_stream_bench_times_every_phase_and_checks_the_overlapped_frames(tmp_path):
    from readlit.bench.cli import main

    main(["stream", *TINY, "--vae", "tiny", "--whisper", "demo", "--seconds", "0.5", "--long-seconds", "2",
          "--out", str(tmp_path)])
    rows = _rows(tmp_path / "stream.json")
    total = next(value for name, value in rows.items() if name.startswith("end to end"))
    phases = [value for name, value in rows.items() if name.startswith("  ")]
    assert len(phases) == 4 and sum(phases) == pytest.approx(total)
    assert rows["first-clip latency 2 s / 0.5 s"] > 0
    overlap = json.loads((tmp_path / "stream.json").read_text())["rows"][-1]
    assert overlap["note"].endswith("frames identical: True")


@pytest.mark.slow
def test_make_bench_gpu_runs_end_to_end_on_the_cpu_at_tiny_size(tmp_path):
    """The device script itself (experiments/bench/gpu.sh via make), as a GPU session would run it."""
    import os
    import subprocess

    from readlit.resolvers import PROJECT_ROOT

    env = {**os.environ, "BENCH_OUT": str(tmp_path)}
    done = subprocess.run(["make", "bench-gpu", "SIZE=tiny"], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = _rows(tmp_path / "gpu_tiny.json")
    assert not [name for name in rows if name.endswith("failed")]
    for name in ("backbone s per video: float32, eager", "training step, batch 1, checkpointed, bf16 autocast, AdamW",
                 "first-clip latency 60 s / 5 s"):
        assert rows[name] > 0
    assert "| backbone s per video, best" in (tmp_path / "gpu_tiny.md").read_text()


def test_memory_table_adds_up_and_shards_by_the_gpu_count(tmp_path):
    """Computed on the meta device: the terms are the parameter count times their bytes, divided by the shards."""
    from readlit.bench.cli import main
    from readlit.bench.nets import Geometry, parameter_count

    main(["memory", "--size", "s", "--gpus", "1", "8", "--out", str(tmp_path)])
    rows = _rows(tmp_path / "memory_s.json")
    params = parameter_count("s", Geometry())
    assert rows["parameters"] == pytest.approx(params / 1e9)
    assert rows["1 GPU: weights + grads + AdamW"] == pytest.approx(16 * params / 1e9)  # 4 + 4 + 2·4 bytes
    assert rows["8 GPUs: weights + grads + AdamW"] == pytest.approx(2 * params / 1e9)
    checkpointed = rows["activations with per-block checkpointing"]
    assert 0 < checkpointed < rows["activations without checkpointing"] / 3
    assert rows["1 GPU: total per GPU"] == pytest.approx(16 * params / 1e9 + checkpointed + 2 * params / 1e9)


def test_saved_bytes_counts_what_fused_attention_keeps_and_no_weights():
    from torch.nn import functional as F

    from readlit.bench.memory import saved_bytes

    q = torch.zeros(1, 2, 1000, 8, device="meta", requires_grad=True)
    # q, k, v, output (4 x 16000 floats) and the log-sum-exp (2000 floats), never the 2 x 1000 x 1000 probabilities
    assert saved_bytes(lambda: F.scaled_dot_product_attention(q, q, q), []) == (4 * 16000 + 2000) * 4
    linear = torch.nn.Linear(8, 8, device="meta")
    x = torch.zeros(5, 8, device="meta", requires_grad=True)
    assert saved_bytes(lambda: linear(x), list(linear.parameters())) == 5 * 8 * 4  # the input, not the weight
