"""The latent cache: exact contents, resume after a kill, refusals, and datamodules reading it."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from hydra.utils import instantiate

from readlit.data import latent_cache
from readlit.data.batch import LatentBatch, LatentItem
from readlit.data.preprocess import latents as builder
from readlit.errors import ConfigError, DataError
from readlit.preprocess import preprocess
from tests.contract import assert_follows
from tests.helpers import compose_app, compose_train

ROOT = Path(__file__).resolve().parents[2]
DATA = ["data=synthetic", "vae=demo", "audio=whisper_random_tiny", "data.identities={train:2,val:1,test:1}",
        "data.session_seconds=3.2", "data.num_frames=17", "data.clip_stride=24"]


def build(tmp_path: Path, out: Path, *overrides: str) -> dict:
    cfg = compose_app("preprocess", ["stage=latents", *DATA, f"latents.out_dir={out}", "latents.shard_size=2",
                                     "latents.batch_size=2", "progress=false", *overrides], tmp_path)
    try:
        return preprocess(cfg)
    finally:
        GlobalHydra.instance().clear()


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != ".lock"}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("latents")
    build(tmp_path_factory.mktemp("run"), out)
    return out


def datamodule(tmp_path: Path, *overrides: str):
    cfg = compose_train([*DATA, "data.return_video=true", *overrides], tmp_path)
    GlobalHydra.instance().clear()
    try:
        module = instantiate(cfg.data)
    except HydraException as err:  # the datamodule checks its cache as it is built; the input problem is the cause
        raise err.__cause__ from None
    module.setup()
    return module, instantiate(cfg.vae)


def test_shards_hold_the_vae_latents_and_the_other_fields_of_every_item(built, tmp_path):
    frames, vae = datamodule(tmp_path)
    manifest = latent_cache.read_manifest(built)
    assert manifest["latent_shape"] == [32, 3, 8, 8]
    for split in ("train", "val", "test"):
        cached, made = latent_cache.LatentShardDataset(built, split), frames.datasets[split]
        assert len(cached) == len(made) == manifest["splits"][split]["items"] > 0
        for index in range(len(made)):
            item, want = cached[index], made[index]
            with torch.no_grad():
                latents = vae.encode(want["video"][None])[0]
                ref_latent = vae.encode_image(want["ref"][None])[0]
            # batched (2) vs single encodes differ in the last float bits
            torch.testing.assert_close(item["latents"], latents, rtol=0, atol=1e-5)
            torch.testing.assert_close(item["ref_latent"], ref_latent, rtol=0, atol=1e-5)
            for key in ("audio_windows", "audio", "mouth_open"):
                torch.testing.assert_close(item[key], want[key].float(), rtol=0, atol=0)
            assert item["clip_id"] == want["clip_id"] and item["fps"] == want["fps"] == 25
            assert "video" not in item and "ref" not in item


def test_a_killed_build_resumes_to_identical_shards(built, tmp_path, monkeypatch):
    out = tmp_path / "latents"
    real_write, written = builder.write_shard, []

    def dies_on_the_fourth_shard(path, items, clip_ids):
        if len(written) == 3:  # a half-written temporary file, as a kill during the write leaves
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / f".{path.name}.dead.tmp").write_bytes(b"half")
            raise KeyboardInterrupt
        written.append(path)
        return real_write(path, items, clip_ids)

    monkeypatch.setattr(builder, "write_shard", dies_on_the_fourth_shard)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path, out)
    assert len(list(out.rglob("shard-*.safetensors"))) == 3 and not (out / latent_cache.MANIFEST).exists()
    with pytest.raises(DataError, match="its build did not finish"):
        latent_cache.LatentShardDataset(out, "train")
    monkeypatch.setattr(builder, "write_shard", real_write)
    build(tmp_path, out)
    assert tree_bytes(out) == tree_bytes(built)


def test_resuming_with_other_settings_is_refused(built, tmp_path):
    before = tree_bytes(built)
    with pytest.raises(DataError, match=r"built with other settings \(\['vae'\] differ\)"):
        build(tmp_path, built, "vae.seed=1")
    assert tree_bytes(built) == before


def test_datamodule_trains_from_the_cache(built, tmp_path):
    module, _ = datamodule(tmp_path, f"data.latents={built}", "data.batch_size=2")
    batch = next(iter(module.train_dataloader()))
    assert batch["latents"].shape == (2, 32, 3, 8, 8) and batch["ref_latent"].shape == (2, 32, 1, 8, 8)
    assert batch["audio_windows"].shape == (2, 17, 30, 64) and batch["mouth_open"].shape == (2, 17)
    assert batch["fps"].tolist() == [25, 25] and len(batch["clip_id"]) == 2
    assert module.frontend is None  # no Whisper, no rendering: the cache replaces both


def test_latent_items_and_batches_have_exactly_the_contract_fields(built, tmp_path):
    module, _ = datamodule(tmp_path, f"data.latents={built}", "data.batch_size=2")
    sizes = dict(C=32, f=3, h=8, w=8, F=17, Hw=30, Da=64, samples=17 * 640)
    item_sizes = assert_follows(module.datasets["val"][0], LatentItem, sizes)
    batch = next(iter(module.train_dataloader()))
    assert assert_follows(batch, LatentBatch, sizes | {"B": 2}) == item_sizes | {"B": 2}
    assert {"audio_windows", "mouth_open", "mouth_mask"} <= set(batch)  # the synthetic items' other tensor fields


def test_datamodule_refuses_a_cache_of_other_clips_or_no_cache(built, tmp_path):
    with pytest.raises(ConfigError, match=r"latents=.* built for other clips \(num_frames: cache 17, config 25\)"):
        datamodule(tmp_path, f"data.latents={built}", "data.num_frames=25")
    with pytest.raises(DataError, match=r"latents=.*nowhere holds no latent cache \(.*/manifest.json missing"):
        datamodule(tmp_path, f"data.latents={tmp_path / 'nowhere'}")


@pytest.mark.parametrize(("args", "expected"), [
    (["stage=frames"], "stage=frames is not one of clips, latents"),
    (["stage=latents", "latents.device=cuda"], "latents.device=cuda but this machine has no such CUDA GPU"),
    (["stage=latents", "latents.shard_size=0"], "latents.shard_size=0 must be at least 1"),
])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, args, expected):
    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "latents"
    result = subprocess.run([sys.executable, "-m", "readlit.preprocess", f"paths.root_dir={tmp_path}", *DATA,
                             f"latents.out_dir={out}", "latents.batch_size=2", *args],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not out.exists()


def test_the_cache_streams_from_a_url_as_webdataset_shards_with_every_item_equal(built, tmp_path):
    """A local folder stands in for object storage: read through fsspec from a file:// URL, as s3:// would be."""
    pytest.importorskip("webdataset")
    from readlit.data.latent_stream import LatentStream, export_webdataset, main

    export_webdataset(built, tmp_path / "bucket")
    first = tree_bytes(tmp_path / "bucket")
    main([str(built), str(tmp_path / "again")])
    assert tree_bytes(tmp_path / "again") == first  # deterministic tars: the same cache, the same bytes
    manifest = latent_cache.read_manifest(built)
    assert sorted(first) == ["manifest.json"] + sorted(
        f"{split}/shard-{i:05d}.tar" for split, info in manifest["splits"].items() for i in range(len(info["shards"])))
    url = (tmp_path / "bucket").as_uri()
    for split in ("train", "val"):
        cached, streamed = latent_cache.LatentShardDataset(built, split), list(LatentStream(url, split))
        assert len(streamed) == len(cached)
        for index, item in enumerate(streamed):
            expected = cached[index]
            assert item.keys() == expected.keys() and item["clip_id"] == expected["clip_id"]
            for key, value in expected.items():
                assert torch.equal(item[key], value) if torch.is_tensor(value) else item[key] == value
    shuffled = [item["clip_id"] for item in LatentStream(url, "train", shuffle=8, seed=1)]
    assert sorted(shuffled) == sorted(item["clip_id"] for item in latent_cache.LatentShardDataset(built, "train"))


def test_datamodule_trains_from_a_streamed_cache(built, tmp_path):
    pytest.importorskip("webdataset")
    from readlit.data.latent_stream import export_webdataset

    url = export_webdataset(built, tmp_path / "bucket").as_uri()
    module, _ = datamodule(tmp_path, f"data.latents={url}", "data.batch_size=2")
    batch = next(iter(module.train_dataloader()))
    assert batch["latents"].shape == (2, 32, 3, 8, 8) and batch["fps"].tolist() == [25, 25]
    assert module.frontend is None
    with pytest.raises(ConfigError, match=r"latents=.* built for other clips \(num_frames: cache 17, config 25\)"):
        datamodule(tmp_path, f"data.latents={url}", "data.num_frames=25")
    with pytest.raises(DataError, match=r"data.latents=file://.*nowhere: cannot read"):
        datamodule(tmp_path, f"data.latents={(tmp_path / 'nowhere').as_uri()}")
