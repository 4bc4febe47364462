"""The metrics the training stages log beside their losses."""

import torch

from readlit.lit.metrics import BinnedMean


def test_binned_mean_groups_values_by_key():
    metric = BinnedMean(4)
    metric.update(torch.tensor([1.0, 3.0, 10.0, 7.0]), torch.tensor([0.1, 0.2, 0.6, 1.0]))
    metric.update(torch.tensor([5.0]), torch.tensor([0.24]))
    values = metric.compute()
    assert set(values) == {"t0-25", "t50-75", "t75-100"}  # no value fell in [0.25, 0.5)
    torch.testing.assert_close(values["t0-25"], torch.tensor(3.0))
    torch.testing.assert_close(values["t50-75"], torch.tensor(10.0))
    torch.testing.assert_close(values["t75-100"], torch.tensor(7.0))  # a key of 1 counts in the last bin
