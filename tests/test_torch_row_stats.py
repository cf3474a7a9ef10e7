"""The PyTorch monitor's per-step reductions through the C++ core (reluscope.torch.row_stats)
equal the torch ops they replace, and hand over to them where the tensor does not allow."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reluscope.torch.row_stats import add_firing_counts, row_norms  # noqa: E402


@pytest.mark.parametrize("shape", [(1, 1), (3, 17), (17, 3), (1000, 784), (4, 3, 2, 2), (5, 0)])
def test_row_norms_equal_torchs(shape):
    value = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    expected = torch.linalg.vector_norm(value.flatten(1), dim=1)
    computed = row_norms(value)
    assert computed.dtype == torch.float32 and computed.shape == expected.shape
    torch.testing.assert_close(computed, expected, rtol=1e-6, atol=0)


def test_row_norms_of_other_tensors_go_through_torch():
    value = torch.randn(6, 4, dtype=torch.float64)
    assert row_norms(value).dtype == torch.float64
    strided = torch.randn(8, 6)[:, ::2]
    torch.testing.assert_close(row_norms(strided), torch.linalg.vector_norm(strided, dim=1))
    assert row_norms(torch.tensor([[float("nan"), 1.0]])).isnan().all()


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
    assert not add_firing_counts(counts, torch.randn(3, 4, requires_grad=True))
    assert not add_firing_counts(counts.to(torch.int32), torch.randn(3, 4))
    assert counts.sum() == 0
