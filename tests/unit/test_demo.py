"""make demo's stage bookkeeping: shipped runs are copied once, then reused; nothing is trained to find that out."""

import json

from readlit import demo


def test_a_shipped_stage_is_copied_then_reused(tmp_path, monkeypatch):
    shipped = tmp_path / "assets" / "demo_vae"
    (shipped / "vae").mkdir(parents=True)
    (shipped / "metrics.json").write_text(json.dumps({"test/psnr": 30.0}))
    monkeypatch.setattr(demo, "SHIPPED", {"vae": shipped})
    monkeypatch.setattr(demo.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    out = tmp_path / "logs"
    assert demo.run_stage("vae", out, retrain=False) == ({"test/psnr": 30.0}, None)
    assert (out / "vae" / "vae").is_dir()
    (out / "vae" / "metrics.json").write_text(json.dumps({"test/psnr": 31.0}))
    assert demo.run_stage("vae", out, retrain=False)[0] == {"test/psnr": 31.0}  # the local run wins
