"""reluscope.torch.scan: any nn.Module, counted against PyTorch's own count."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import reluscope.torch as rt  # noqa: E402


def mlp_with_planted_dead_units():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(inplace=True),
                        nn.Linear(12, 3))
    with torch.no_grad():
        net[0].bias[[2, 9]] = -100.0  # off on any standard-normal input
        net[2].weight[5] = 0.0        # pre-activation exactly 0: never > 0
        net[2].bias[5] = 0.0
    return net


def plain_torch_counts(net, x):
    """Per hidden layer, samples on which each unit's pre-activation is > 0: torch alone."""
    counts, h = [], x
    with torch.no_grad():
        for layer in (net[0], net[2]):
            pre = layer(h)
            counts.append((pre > 0).sum(0).numpy())
            h = torch.relu(pre)
    return counts


def test_planted_dead_units_found_as_torch_counts_them():
    net = mlp_with_planted_dead_units()
    x = torch.randn(300, 7)
    y = torch.zeros(300, dtype=torch.long)
    report = rt.scan(net, DataLoader(TensorDataset(x, y), batch_size=37))  # (x, y) pairs
    expected = plain_torch_counts(net, x)
    assert report.n_samples == 300
    assert [layer.name for layer in report.layers] == ["0", "2"]
    for layer, counts in zip(report.layers, expected):
        np.testing.assert_array_equal(layer.firing_counts, counts)
        assert layer.n_samples == 300
    assert report.layers[0].dead_units.tolist() == [2, 9]
    assert report.layers[1].dead_units.tolist() == [5]
    # The same from one tensor, and from a list of plain tensor batches.
    for batches in (x, list(x.split(100))):
        again = rt.scan(net, batches)
        for layer, counts in zip(again.layers, expected):
            np.testing.assert_array_equal(layer.firing_counts, counts)


def test_margins_dormancy_and_the_report_use_module_paths():
    net = nn.Sequential(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), nn.Linear(6, 2))
    x = torch.randn(50, 4)
    report = rt.scan(net, x)
    with torch.no_grad():
        pre = net[0][0](x)
    np.testing.assert_allclose(report.layers[0].max_pre_activation, pre.amax(0).numpy())
    np.testing.assert_allclose(report.layers[0].mean_abs_activation,
                               torch.relu(pre).mean(0).double().numpy(), rtol=1e-6)
    assert report.layers[0].name == "0.0"
    assert report.to_dict()["layers"][0]["name"] == "0.0"
    assert "0.0" in str(report)


def test_a_cnn_with_a_planted_dead_channel():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3),
                        nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(5 * 6 * 6, 4), nn.ReLU6(),
                        nn.Linear(4, 2))
    with torch.no_grad():
        net[0].bias[4] = -1e3  # channel 4 is negative at every pixel of every image
    x = torch.randn(40, 3, 8, 8)
    report = rt.scan(net, [(x[:25], None), (x[25:], None)])
    assert [layer.name for layer in report.layers] == ["0", "2", "5"]
    assert report.layers[0].dead_units.tolist() == [4]
    with torch.no_grad():
        pre0 = net[0](x)
        pre2 = net[2](torch.relu(pre0))
        pre5 = net[5](torch.nn.functional.leaky_relu(pre2, 0.1).flatten(1))
    # A channel fires on an image when its pre-activation is > 0 at some pixel.
    np.testing.assert_array_equal(report.layers[0].firing_counts,
                                  (pre0 > 0).flatten(2).any(2).sum(0).numpy())
    np.testing.assert_array_equal(report.layers[1].firing_counts,
                                  (pre2 > 0).flatten(2).any(2).sum(0).numpy())
    np.testing.assert_array_equal(report.layers[2].firing_counts, (pre5 > 0).sum(0).numpy())
    np.testing.assert_allclose(report.layers[0].max_pre_activation,
                               pre0.amax(dim=(0, 2, 3)).numpy())


class ReusedModules(nn.Module):
    """One ReLU module after three calls; ``shared`` is called twice (tied weights)."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(5, 8)
        self.shared = nn.Linear(8, 8)
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = self.act(self.first(x))
        h = self.act(self.shared(h))
        h = self.act(self.shared(h))
        return self.head(h)


def test_a_reused_relu_counts_per_call_site():
    torch.manual_seed(2)
    net = ReusedModules()
    with torch.no_grad():
        net.shared.bias[3] = -50.0
    x = torch.randn(64, 5)
    report = rt.scan(net, x)
    assert [layer.name for layer in report.layers] == ["first", "shared#1", "shared#2"]
    with torch.no_grad():
        pre_first = net.first(x)
        pre_1 = net.shared(torch.relu(pre_first))
        pre_2 = net.shared(torch.relu(pre_1))
    for layer, pre in zip(report.layers, (pre_first, pre_1, pre_2)):
        np.testing.assert_array_equal(layer.firing_counts, (pre > 0).sum(0).numpy())
        assert layer.n_samples == 64
    assert 3 in report.layers[1].dead_units and 3 in report.layers[2].dead_units


def test_the_module_comes_back_as_it_was():
    net = mlp_with_planted_dead_units()
    net.train()
    net[1].eval()  # a mixed state is restored module by module
    rt.scan(net, torch.randn(10, 7))
    assert net.training and not net[1].training and net[2].training
    for module in net.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


class FunctionalRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return torch.relu(self.fc(x))


def test_functional_relu_is_invisible_and_says_so():
    with pytest.raises(ValueError, match="F.relu calls are invisible"):
        rt.scan(FunctionalRelu(), torch.randn(5, 3))


def test_bad_batches():
    net = mlp_with_planted_dead_units()
    with pytest.raises(TypeError, match="batches must be"):
        rt.scan(net, 3)
    with pytest.raises(TypeError, match="batch 0 is a dict"):
        rt.scan(net, [{"x": torch.randn(2, 7)}])
    # A dict or a string iterates, but by its keys or characters.
    with pytest.raises(TypeError, match="batches must be a tensor.*got a dict"):
        rt.scan(net, {"x": torch.randn(2, 7)})
    with pytest.raises(TypeError, match="batches must be a tensor.*got a str"):
        rt.scan(net, "data.npy")
    with pytest.raises(ValueError, match="no samples"):
        rt.scan(net, [])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        rt.scan("not a module", torch.randn(2, 7))


def test_empty_batches_are_skipped():
    net = mlp_with_planted_dead_units()
    x, empty = torch.randn(40, 7), torch.empty(0, 7)
    expected = rt.scan(net, x)
    for batches in (empty, [x, empty], [empty, x], [empty, x[:15], empty, x[15:]]):
        if batches is empty:
            with pytest.raises(ValueError, match="batches held no samples"):
                rt.scan(net, batches)
            continue
        report = rt.scan(net, batches)
        assert report.n_samples == 40
        for layer, want in zip(report.layers, expected.layers, strict=True):
            assert layer.n_samples == 40
            np.testing.assert_array_equal(layer.firing_counts, want.firing_counts)
            np.testing.assert_array_equal(layer.max_pre_activation, want.max_pre_activation)
    with pytest.raises(ValueError, match="batches held no samples"):
        rt.scan(net, [empty, empty])


def test_an_unbatched_input_is_one_sample():
    # PyTorch reads a Linear's (n_features,) and a Conv2d's (C, H, W) as one sample; the
    # report counts what the layers count, not the input's first dimension.
    net = mlp_with_planted_dead_units()
    x = torch.randn(7)
    report = rt.scan(net, x)
    assert report.n_samples == 1
    assert [layer.n_samples for layer in report.layers] == [1, 1]
    for layer, want in zip(report.layers, rt.scan(net, x[None]).layers, strict=True):
        np.testing.assert_array_equal(layer.firing_counts, want.firing_counts)
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    image = torch.randn(3, 6, 6)
    report = rt.scan(conv, [image, image[None].expand(2, -1, -1, -1)])
    assert report.n_samples == 3 and report.layers[0].n_samples == 3


def test_import_reluscope_does_not_import_torch():
    code = "import sys, reluscope; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("poison", ["input", "weight"])
def test_nan_pre_activations_are_refused_not_counted_as_dead(poison):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.ReLU(), torch.nn.Linear(10, 8),
                              torch.nn.ReLU(), torch.nn.Linear(8, 3))
    x = torch.randn(50, 6)
    if poison == "input":
        x[7, 2] = float("nan")
    else:
        with torch.no_grad():
            net[2].weight[3, 0] = float("nan")
    site = "0" if poison == "input" else "2"
    with pytest.raises(ValueError, match=f"site '{site}' has NaN pre-activations"):
        rt.scan(net, x)
