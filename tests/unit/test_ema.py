"""The EMA callback: the average's update rule, lending the weights, checkpoints, any stage."""

from types import SimpleNamespace

import pytest
import torch

from readlit.callbacks.ema import EMA, averaged_weights
from readlit.checkpoint import EMA_KEY
from readlit.errors import CheckpointError, ConfigError


class Tiny(torch.nn.Module):
    """Two parameters, one of them frozen (a frozen codec's weights are never averaged)."""

    def __init__(self):
        super().__init__()
        self.live = torch.nn.Linear(2, 2)
        self.frozen = torch.nn.Linear(2, 2).requires_grad_(False)

    @property
    def device(self) -> torch.device:
        return self.live.weight.device


def _step(ema: EMA, module: Tiny, new_weight: torch.Tensor) -> None:
    with torch.no_grad():
        module.live.weight.copy_(new_weight)
    ema.on_train_batch_end(None, module, None, None, 0)


def test_average_follows_avg_plus_one_minus_decay_times_the_gap():
    module, ema = Tiny(), EMA(decay=0.75)
    ema.setup(None, module, "fit")
    assert set(ema.averages) == {"live.weight", "live.bias"}
    start = module.live.weight.detach().clone()
    ones = torch.ones(2, 2)
    _step(ema, module, ones)
    torch.testing.assert_close(ema.averages["live.weight"], start + 0.25 * (ones - start))
    _step(ema, module, 3 * ones)
    expected = start + 0.25 * (ones - start)
    torch.testing.assert_close(ema.averages["live.weight"], expected + 0.25 * (3 * ones - expected))


def test_applied_lends_the_averages_and_gives_the_live_weights_back():
    module, ema = Tiny(), EMA(decay=0.5)
    ema.setup(None, module, "fit")
    _step(ema, module, torch.full((2, 2), 4.0))
    live = module.live.weight.detach().clone()
    with ema.applied(module):
        torch.testing.assert_close(module.live.weight.detach(), ema.averages["live.weight"])
        with ema.applied(module):  # re-entrant: the inner block neither swaps again nor restores early
            torch.testing.assert_close(module.live.weight.detach(), ema.averages["live.weight"])
        torch.testing.assert_close(module.live.weight.detach(), ema.averages["live.weight"])
    assert torch.equal(module.live.weight.detach(), live)
    trainer = SimpleNamespace(callbacks=[ema])
    with averaged_weights(trainer, module) as used:
        assert used and torch.equal(module.live.weight.detach(), ema.averages["live.weight"])
    with averaged_weights(SimpleNamespace(callbacks=[]), module) as used:
        assert not used and torch.equal(module.live.weight.detach(), live)


def test_validate_swaps_for_evaluation_only():
    module, ema = Tiny(), EMA(decay=0.5, validate=True)
    ema.setup(None, module, "fit")
    _step(ema, module, torch.full((2, 2), 4.0))
    live = module.live.weight.detach().clone()
    ema.on_validation_epoch_start(None, module)
    torch.testing.assert_close(module.live.weight.detach(), ema.averages["live.weight"])
    ema.on_validation_epoch_end(None, module)
    assert torch.equal(module.live.weight.detach(), live)
    plain = EMA(decay=0.5)
    plain.setup(None, module, "fit")
    _step(plain, module, torch.zeros(2, 2))
    plain.on_validation_epoch_start(None, module)
    assert torch.equal(module.live.weight.detach(), torch.zeros(2, 2))


def test_checkpoint_round_trip_and_refusals():
    module, ema = Tiny(), EMA(decay=0.5)
    ema.setup(None, module, "fit")
    _step(ema, module, torch.full((2, 2), 2.0))
    checkpoint = {}
    ema.on_save_checkpoint(None, module, checkpoint)
    restored = EMA(decay=0.5)
    restored.setup(None, Tiny(), "fit")
    restored.on_load_checkpoint(None, module, checkpoint)
    for name, value in ema.averages.items():
        assert torch.equal(restored.averages[name], value)
    fresh = EMA()
    fresh.on_load_checkpoint(None, module, {})  # a run without EMA: averaging starts from its weights
    assert torch.equal(fresh.averages["live.weight"], module.live.weight.detach())
    checkpoint[EMA_KEY]["other.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="do not match"):
        restored.on_load_checkpoint(None, module, checkpoint)
    with pytest.raises(ConfigError, match="decay=1.0"):
        EMA(decay=1.0)

