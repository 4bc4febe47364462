"""The metric weights registry, its CLI, and the missing-weights rule."""

import hashlib

import pytest

from readlit.errors import CheckpointError
from readlit.eval import weights as W
from readlit.eval.metrics.fid import FID
from readlit.eval.metrics.fvd import FVD
from readlit.eval.metrics.sync import SyncScore


def test_every_metric_file_is_listed_with_a_source():
    metrics = {m for w in W.REGISTRY.values() for m in w.metrics}
    assert {"fid", "fvd", "fvd_disco", "sync_c", "sync_d", "e_fid", "lpips"} <= metrics
    assert all(w.url.startswith("http") for w in W.REGISTRY.values())


def test_weights_dir_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv(W.ENV_KEY, str(tmp_path))
    assert W.weights_dir() == tmp_path
    assert W.local_path("syncnet") == tmp_path / "syncnet_v2.model"
    assert W.weights_dir(tmp_path / "x") == tmp_path / "x"


def test_missing_file_message_names_file_source_and_key(tmp_path):
    with pytest.raises(CheckpointError) as err:
        W.require("syncnet", tmp_path)
    text = str(err.value)
    assert "syncnet_v2.model" in text and "robots.ox.ac.uk" in text and "weights.syncnet" in text
    assert "\n" not in text


@pytest.mark.parametrize("build", [lambda d: FID(weights_dir=d), lambda d: FVD(weights_dir=d),
                                   lambda d: FVD("disco", "state_dict", weights_dir=d),
                                   lambda d: SyncScore(weights_dir=d)])
def test_metrics_refuse_to_run_without_weights(tmp_path, build):
    with pytest.raises(CheckpointError, match="not found"):
        build(tmp_path)


def test_checksum_prefix_and_suffix(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"readlit")
    digest = hashlib.sha256(b"readlit").hexdigest()
    assert W.checksum_ok(path, digest)
    assert W.checksum_ok(path, f"{digest[:8]}…{digest[-4:]}")
    assert not W.checksum_ok(path, "0000…")
    assert W.checksum_ok(path, None)


def test_cli_lists_offline_with_exit_0(tmp_path, capsys):
    (tmp_path / "syncnet_v2.model").write_bytes(b"x")
    assert W.main(["--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "present  syncnet" in out
    assert "MISSING  inception" in out and "toshas/torch-fidelity" in out


def test_cli_download_failure_exits_2(tmp_path, capsys, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(W.urllib.request, "urlopen", offline)
    assert W.main(["--dir", str(tmp_path), "--download", "--only", "syncnet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download syncnet_v2.model") and "unreachable" in err
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_download_verifies_checksum(tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(W.urllib.request, "urlopen", lambda *a, **k: io.BytesIO(b"not the model"))
    with pytest.raises(CheckpointError, match="SHA-256"):
        W.download("syncnet", tmp_path)
    assert not list(tmp_path.iterdir())
