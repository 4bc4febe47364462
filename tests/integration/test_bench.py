"""python -m readlit.bench latents|decode: both paths are measured in one run, not assumed."""

import math

import pytest

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
