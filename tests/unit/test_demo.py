"""make demo's stage bookkeeping: shipped runs are copied once, then reused; nothing is trained to find that out."""

import json
from pathlib import Path

from tests.helpers import load_experiment

demo = load_experiment("demo")


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


def test_a_stage_of_several_phases_starts_each_from_the_previous_export(tmp_path, monkeypatch):
    commands = []

    def fake_train(cmd, **kwargs):
        commands.append(cmd)
        run_dir = next(arg.split("=", 1)[1] for arg in cmd if arg.startswith("hydra.run.dir="))
        (tmp_path / run_dir).mkdir(parents=True, exist_ok=True)
        (tmp_path / run_dir / "metrics.json").write_text(json.dumps({"phase": len(commands)}))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(demo, "STAGES", {"vae": (("first", ()), ("second", ("vae.pretrained={previous}/vae",)))})
    monkeypatch.setattr(demo, "SHIPPED", {})
    monkeypatch.setattr(demo.subprocess, "run", fake_train)
    monkeypatch.chdir(tmp_path)
    metrics, minutes = demo.run_stage("vae", Path("logs"), retrain=False, overrides=("trainer.max_steps=9",))
    assert metrics == {"phase": 2} and minutes is not None
    first, second = commands
    assert "experiment=first" in first and "hydra.run.dir=logs/vae_phase1" in first
    assert "trainer.max_steps=9" not in first  # the caller's overrides go to the last phase only
    assert second[-2:] == ["vae.pretrained=logs/vae_phase1/vae", "trainer.max_steps=9"]
    assert "hydra.run.dir=logs/vae" in second
