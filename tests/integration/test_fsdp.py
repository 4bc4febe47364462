"""trainer=fsdp: the strategy the config builds, and FSDP with its wrapping around the real A2V-DiT on CPU processes.

Lightning's FSDP strategy refuses a CPU accelerator, so the sharded training step is run here with the strategy's own
wrapping policy and sharding strategy through PyTorch's FSDP over gloo: one process in the default tier, two in the
slow tier. Each compares the step against the same step on the unwrapped net.
"""

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra.utils import instantiate
from torch.distributed.fsdp import FullStateDictConfig, StateDictType
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from readlit.nn.a2v_dit import A2VBlock, A2VDiT

NET = dict(in_channels=8, num_attention_heads=2, attention_head_dim=8, num_layers=2, audio_dim=6, text="null",
           caption_channels=16, cross_attention_dim=16, gradient_checkpointing=True)


def _strategy(train_cfg):
    return instantiate(train_cfg("experiment=demo_a2v", "trainer=fsdp").trainer.strategy)


def test_trainer_fsdp_wraps_each_block_and_keeps_one_checkpoint_file(train_cfg):
    from lightning.pytorch.strategies import FSDPStrategy

    cfg = train_cfg("experiment=demo_a2v", "trainer=fsdp")
    assert (cfg.trainer.accelerator, cfg.trainer.precision) == ("gpu", "bf16-mixed")
    strategy = instantiate(cfg.trainer.strategy)
    assert isinstance(strategy, FSDPStrategy)
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {A2VBlock}
    assert strategy.kwargs["use_orig_params"] and strategy._state_dict_type == "full"
    assert strategy.sharding_strategy.name == "FULL_SHARD" and not strategy._activation_checkpointing_kwargs


def _inputs():
    g = torch.Generator().manual_seed(1)
    return (torch.randn(2, 8, 3, 2, 2, generator=g), torch.rand(2, 3, generator=g),
            torch.randn(2, 2, 3, 6, generator=g))


def _reference_step() -> dict[str, torch.Tensor]:
    """One AdamW step of the unwrapped net on the batch: the numbers every FSDP rank must reach."""
    torch.manual_seed(0)
    net = A2VDiT(**NET)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-2)
    net(*_inputs()).square().mean().backward()
    optimizer.step()
    return {key: value.detach().clone() for key, value in net.state_dict().items()}


def _fsdp_step(rank: int, world: int, port: int, policy, sharding, out: str) -> None:
    """One AdamW step of the FSDP-wrapped net (every rank the same batch), its shard size and full state dict."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        model = FSDP(A2VDiT(**NET), auto_wrap_policy=policy, sharding_strategy=sharding, use_orig_params=True,
                     device_id=torch.device("cpu"))
        units = sum(isinstance(module, FSDP) for module in model.modules())
        local = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        model(*_inputs()).square().mean().backward()
        optimizer.step()
        with FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT, FullStateDictConfig(rank0_only=False)):
            state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        torch.save({"units": units, "local": local, "state": state}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check(tmp_path, world: int) -> None:
    expected = _reference_step()
    total = sum(value.numel() for value in expected.values())
    for rank in range(world):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["units"] == 1 + NET["num_layers"]  # the root and one unit per A2V block
        if world > 1:
            assert result["local"] < 0.6 * total  # each rank holds about 1/world of the weights
        assert result["state"].keys() == expected.keys()  # the names a readlit checkpoint and LTX loading use
        for key, value in expected.items():
            torch.testing.assert_close(result["state"][key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_one_process_fsdp_step_equals_the_plain_step(train_cfg, tmp_path):
    strategy = _strategy(train_cfg)
    _fsdp_step(0, 1, _free_port(), strategy.kwargs["auto_wrap_policy"], strategy.sharding_strategy, str(tmp_path))
    _check(tmp_path, 1)


@pytest.mark.slow
def test_two_process_fsdp_step_shards_the_weights_and_equals_the_plain_step(train_cfg, tmp_path):
    strategy = _strategy(train_cfg)
    mp.spawn(_fsdp_step, args=(2, _free_port(), strategy.kwargs["auto_wrap_policy"], strategy.sharding_strategy,
                               str(tmp_path)), nprocs=2)
    _check(tmp_path, 2)
