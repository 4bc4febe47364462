"""python -m readlit.bench latents: both paths train the same module and the ratio is measured, not assumed."""

import pytest

from readlit.bench import bench_latents


@pytest.mark.slow
def test_latent_bench_times_both_paths():
    result = bench_latents("demo_a2v", ["data.batch_size=2", "data.session_seconds=2"], steps=1)
    assert result["on_the_fly_s_per_step"] > 0 and result["cached_s_per_step"] > 0
    assert result["speedup"] == pytest.approx(result["on_the_fly_s_per_step"] / result["cached_s_per_step"])
