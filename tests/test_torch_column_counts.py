"""The PyTorch monitor's firing counts through the C++ core (reluscope.torch.column_counts) equal
the torch ops they replace, and hand over to them where the tensor does not allow."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reluscope.torch.column_counts import add_firing_counts  # noqa: E402


def test_parameters_that_require_grad_are_read_in_place_too():
    counts = torch.zeros(3, dtype=torch.int64)
    assert add_firing_counts(counts, torch.randn(4, 3, requires_grad=True))
    assert counts.sum() > 0


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (97, 1025), (256, 1024)])
def test_firing_counts_add_what_torch_counts(shape):
    pre = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    pre[0, 0] = float("nan")  # not > 0
    pre[-1, -1] = -0.0
    counts = torch.full((shape[1],), 3, dtype=torch.int64)
    assert add_firing_counts(counts, pre)
    np.testing.assert_array_equal(counts.numpy(), 3 + (pre > 0).sum(0).numpy())


def test_firing_counts_refuse_what_they_cannot_read_in_place():
    counts = torch.zeros(4, dtype=torch.int64)
    assert not add_firing_counts(counts, torch.randn(3, 4, dtype=torch.float64))
    assert not add_firing_counts(counts, torch.randn(4, 3).T)  # not contiguous
    assert not add_firing_counts(counts, torch.randn(2, 3, 4))
    assert not add_firing_counts(counts.to(torch.int32), torch.randn(3, 4))
    assert counts.sum() == 0
