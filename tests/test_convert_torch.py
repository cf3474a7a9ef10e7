"""PyTorch's nn.Sequential to reluscope's MLP and back: exact weights, equal outputs,
every refusal, and dead units found as PyTorch's own count finds them."""

import numpy as np
import pytest

import reluscope as rs

# A guard for users without the torch extra; the test extra installs PyTorch.
torch = pytest.importorskip("torch", reason="the torch extra (installed by the test extra)")
nn = torch.nn


def sequential(sizes, activation=nn.ReLU, seed=0, **linear_options):
    """Linear layers of ``sizes`` with a fresh ``activation()`` between them."""
    torch.manual_seed(seed)
    modules = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            modules.append(activation())
        modules.append(nn.Linear(fan_in, fan_out, **linear_options))
    return nn.Sequential(*modules)


def linears(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def torch_outputs(module, x):
    """What PyTorch computes on x (float32, eval mode, no gradient), as numpy."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        outputs = module(torch.from_numpy(x)).numpy()
    module.train(was_training)
    return outputs


def assert_same_function(model, module, x):
    # Equal up to float32 rounding: the two libraries sum the products in
    # different orders, each result within a few ulps of the exact sum.
    np.testing.assert_allclose(model.forward(x), torch_outputs(module, x), rtol=1e-5, atol=1e-5)


def assert_weights_match(model, module):
    """The model's weights are the module's Linear weights transposed, bit for bit."""
    torch_linears = linears(module)
    assert len(model.layers) == len(torch_linears)
    for layer, linear in zip(model.layers, torch_linears):
        expected_weight = linear.weight.detach().float().numpy().T
        expected_bias = (np.zeros(linear.out_features, np.float32) if linear.bias is None
                         else linear.bias.detach().float().numpy())
        assert layer.weight.dtype == np.float32 and layer.weight.flags.c_contiguous
        np.testing.assert_array_equal(layer.weight, expected_weight)
        np.testing.assert_array_equal(layer.bias, expected_bias)


def data(n_features, n=64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, n_features)).astype(np.float32)


ACTIVATIONS = [
    pytest.param(nn.ReLU, "relu", 0.01, id="relu"),
    pytest.param(lambda: nn.LeakyReLU(0.1), "leaky_relu", 0.1, id="leaky"),
    pytest.param(nn.Identity, "identity", 0.01, id="identity"),
]


@pytest.mark.parametrize("sizes", [[1, 1], [1, 3], [3, 17, 1], [17, 1, 3, 17], [5, 3, 3, 3, 2]])
@pytest.mark.parametrize("activation, name, slope", ACTIVATIONS)
def test_from_torch_and_back_are_exact_on_odd_shapes(sizes, activation, name, slope):
    module = sequential(sizes, activation)
    model = rs.MLP.from_torch(module)
    assert model.layer_sizes == sizes
    if len(sizes) > 2:
        assert model.activation.name == name
        if name == "leaky_relu":
            assert model.activation.negative_slope == slope
    assert_weights_match(model, module)
    x = data(sizes[0])
    assert_same_function(model, module, x)

    back = model.to_torch()
    assert isinstance(back, nn.Sequential)
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in back.parameters())
    assert_weights_match(model, back)
    assert_weights_match(rs.MLP.from_torch(back), module)
    # The same float32 weights, the same arithmetic: PyTorch gives the same outputs.
    np.testing.assert_array_equal(torch_outputs(back, x), torch_outputs(module, x))


def test_to_torch_layers_and_activations():
    model = rs.MLP([4, 3, 17, 2], "leaky_relu", negative_slope=0.2, seed=0)
    back = model.to_torch()
    assert [type(m) for m in back] == [nn.Linear, nn.LeakyReLU, nn.Linear, nn.LeakyReLU,
                                      nn.Linear]
    assert back[1].negative_slope == model.activation.negative_slope == 0.2
    assert [(m.in_features, m.out_features) for m in linears(back)] == [(4, 3), (3, 17), (17, 2)]
    assert_same_function(model, back, data(4))
    assert [type(m) for m in rs.MLP([2, 2, 2], "identity", seed=0).to_torch()] == [
        nn.Linear, nn.Identity, nn.Linear]


def test_to_torch_draws_no_random_numbers():
    torch.manual_seed(7)
    before = torch.get_rng_state()
    rs.MLP([30, 40, 5], seed=0).to_torch()
    assert torch.equal(torch.get_rng_state(), before)


def test_the_converted_model_shares_no_memory_with_the_module():
    module = sequential([3, 4, 2])
    model = rs.MLP.from_torch(module)
    kept = model.get_weights()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(1.0)
    for (weight, bias), layer in zip(kept, model.layers):
        np.testing.assert_array_equal(layer.weight, weight)
        np.testing.assert_array_equal(layer.bias, bias)
    back = model.to_torch()
    model.layers[0].weight += 1.0
    np.testing.assert_array_equal(back[0].weight.detach().numpy().T, kept[0][0])


def test_nested_sequentials_with_flatten_dropout_and_identity():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Flatten(),
        nn.Sequential(nn.Linear(4, 3), nn.ReLU()),
        nn.Dropout(0.5),
        nn.Sequential(nn.Sequential(nn.Linear(3, 17)), nn.ReLU(), nn.Identity()),
        nn.Dropout(0.2),
        nn.Linear(17, 1),
        nn.Identity(),
    )
    module.train()  # Dropout is active in training; the conversion takes its eval meaning
    model = rs.MLP.from_torch(module)
    assert model.layer_sizes == [4, 3, 17, 1]
    assert module.training  # the module is left as it was
    assert_weights_match(model, module)
    assert_same_function(model, module, data(4))


def test_a_module_used_at_several_places_counts_at_each():
    # One ReLU after every layer is a common way to write a network; named_children
    # would list it once, and the network would look like it had no activation there.
    torch.manual_seed(0)
    relu, shared = nn.ReLU(), nn.Linear(3, 3)
    module = nn.Sequential(nn.Linear(4, 3), relu, shared, relu, shared, relu, nn.Linear(3, 2))
    model = rs.MLP.from_torch(module)
    assert model.layer_sizes == [4, 3, 3, 3, 2]
    assert model.activation.name == "relu"
    np.testing.assert_array_equal(model.layers[1].weight, model.layers[2].weight)
    assert_same_function(model, module, data(4))


def test_a_linear_without_bias_gets_a_zero_bias():
    module = sequential([5, 3, 2], bias=False)
    model = rs.MLP.from_torch(module)
    for layer in model.layers:
        np.testing.assert_array_equal(layer.bias, np.zeros(layer.fan_out, np.float32))
    assert_same_function(model, module, data(5))


def test_a_subclass_that_keeps_forward_is_accepted():
    class ScaledInitLinear(nn.Linear):
        def reset_parameters(self):
            nn.init.constant_(self.weight, 0.5)
            nn.init.zeros_(self.bias)

    module = nn.Sequential(ScaledInitLinear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert_weights_match(rs.MLP.from_torch(module), module)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16],
                         ids=["float64", "float16", "bfloat16"])
def test_any_floating_dtype_becomes_float32(dtype):
    module = sequential([17, 3, 1]).to(dtype)
    model = rs.MLP.from_torch(module)
    for layer, linear in zip(model.layers, linears(module)):
        # float16 and bfloat16 widen exactly; float64 rounds to the nearest float32.
        np.testing.assert_array_equal(layer.weight, linear.weight.detach().float().numpy().T)
    assert all(p.dtype == dtype for p in module.parameters())
    assert_same_function(model, module.float(), data(17))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here; the CPU path "
                                                          "is the one every run tests")
def test_a_module_on_a_cuda_device():
    module = sequential([17, 3, 1])
    model_from_cpu = rs.MLP.from_torch(module)
    model_from_cuda = rs.MLP.from_torch(module.to("cuda"))
    for from_cpu, from_cuda in zip(model_from_cpu.layers, model_from_cuda.layers):
        np.testing.assert_array_equal(from_cpu.weight, from_cuda.weight)
        np.testing.assert_array_equal(from_cpu.bias, from_cuda.bias)


class DoubledReLU(nn.ReLU):
    def forward(self, x):
        return 2 * super().forward(x)


class Custom(nn.Module):
    def forward(self, x):
        return x


def lazy_net():
    return nn.Sequential(nn.LazyLinear(3), nn.ReLU(), nn.Linear(3, 1))


def meta_net():
    with torch.device("meta"):
        return sequential([3, 4, 1])


def nan_net():
    module = sequential([3, 4, 1])
    with torch.no_grad():
        module[2].weight[0, 1] = float("nan")
    return module


REFUSALS = [
    (lambda: nn.Linear(3, 2), TypeError, r"takes an nn.Sequential .*got Linear"),
    (lambda: Custom(), TypeError, r"takes an nn.Sequential .*got Custom.*from_weights"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.Conv1d(1, 1, 1), nn.Linear(4, 1)), TypeError,
     r"module 1 \(Conv1d\) is not supported by MLP.from_torch, which takes an nn.Sequential"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Identity(), nn.Tanh()),
                           nn.Linear(4, 1)),
     TypeError, r"module 1\.1 \(Tanh\) is not supported.*nn.ReLU, nn.LeakyReLU"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU6(), nn.Linear(4, 1)), TypeError,
     r"module 1 \(ReLU6\) is not supported"),
    (lambda: nn.Sequential(nn.Linear(3, 4), DoubledReLU(), nn.Linear(4, 1)), TypeError,
     r"module 1 \(DoubledReLU\) is not supported"),
    (lambda: nn.Sequential(nn.Flatten(0), nn.Linear(3, 1)), TypeError,
     r"module 0 \(Flatten\) is not supported"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(), nn.ReLU(), nn.Linear(4, 1)),
     ValueError, r"modules 1 \(ReLU\(\)\) and 3 \(ReLU\(\)\) are two activations in a row"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU()), ValueError,
     r"module 1 \(ReLU\(\)\) comes after the last nn.Linear, 0: the output layer .* is linear"),
    (lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), ValueError,
     r"module 0 \(ReLU\(\)\) comes before the first nn.Linear"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.LeakyReLU(),
                           nn.Linear(4, 1)), ValueError,
     r"one activation .* but module 1 \(ReLU\(\)\) differs from module 3 \(LeakyReLU"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(0.1), nn.Linear(4, 4),
                           nn.LeakyReLU(0.2), nn.Linear(4, 1)), ValueError,
     r"differs from module 3 \(LeakyReLU\(negative_slope=0.2\)\)"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Linear(4, 1)),
     ValueError, r"module 1 \(ReLU\(\)\) differs from no activation between modules 2 and 3"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.LeakyReLU(1.5), nn.Linear(4, 1)), ValueError,
     r"module 1 \(LeakyReLU\(negative_slope=1.5\)\): negative_slope"),
    (lambda: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(5, 1))),
     ValueError, r"module 2\.0 \(Linear\(in_features=5, .*\)\) takes 5 features but the "
                 r"nn.Linear before it, module 0, gives 4"),
    (lambda: nn.Sequential(), ValueError, "found no nn.Linear"),
    (lambda: nn.Sequential(nn.Dropout(), nn.ReLU()), ValueError, "found no nn.Linear"),
    (lazy_net, ValueError, r"module 0 \(LazyLinear\) has an uninitialized weight: run one "
                           r"forward pass"),
    (meta_net, ValueError, r"module 0 \(Linear.*\) has its weight on the meta device"),
    (nan_net, ValueError, r"module 2 \(Linear.*\) has a weight with NaN or Inf"),
]


@pytest.mark.parametrize("make_module, error, message", REFUSALS)
def test_every_refusal_names_the_module_and_what_is_supported(make_module, error, message):
    with pytest.raises(error, match=message):
        rs.MLP.from_torch(make_module())


def test_the_entry_points_take_a_torch_module_and_refuse_other_objects():
    module = sequential([4, 5, 3])
    x = data(4)
    expected = rs.scan(rs.MLP.from_torch(module), x)
    assert rs.scan(module, x).to_dict() == expected.to_dict()
    assert rs.born_dead(module, x).to_dict() == rs.born_dead(rs.MLP.from_torch(module),
                                                             x).to_dict()
    monitor = rs.DeadUnitMonitor(x)
    assert monitor.observe(0, module).to_dict() == expected.to_dict()
    # An object from PyTorch that is no network gets the converter's own message.
    with pytest.raises(TypeError, match="MLP.from_torch takes an nn.Sequential .*got Tensor"):
        rs.scan(torch.ones(3, 4), x)


def torch_firing_counts(module, x):
    """Per Linear followed by a ReLU-family module: on how many samples each unit
    fired (pre-activation > 0), counted in plain PyTorch operations."""
    counts = []
    modules = [m for m in module.modules() if not isinstance(m, nn.Sequential)]
    h = torch.from_numpy(x)
    with torch.no_grad():
        for i, m in enumerate(modules):
            h = m(h)
            if isinstance(m, nn.Linear) and i + 1 < len(modules):
                counts.append((h > 0).sum(0).numpy())
    return counts


@pytest.mark.parametrize("activation", [nn.ReLU, lambda: nn.LeakyReLU(0.05)],
                         ids=["relu", "leaky"])
def test_planted_dead_units_are_found_as_pytorch_counts_them(activation):
    module = sequential([20, 17, 9, 3], activation, seed=1)
    planted = {0: [1, 5, 16], 1: [3]}
    with torch.no_grad():
        for layer, units in planted.items():
            linear = linears(module)[layer]
            linear.weight[units] = 0.0   # the unit ignores its input...
            linear.bias[units] = -1.0    # ...and its pre-activation is always -1
    x = data(20, n=500, seed=2)
    report = rs.scan(module, x)
    expected_counts = torch_firing_counts(module, x)
    assert len(report.layers) == len(expected_counts) == 2
    for layer, counts in zip(report.layers, expected_counts):
        assert layer.dead_units.tolist() == np.flatnonzero(counts == 0).tolist()
        assert layer.dead_units.tolist() == planted[layer.index]
        # Either library may round a pre-activation within an ulp of 0 to the
        # other side (they sum in different orders): allow one such sample.
        assert np.abs(layer.firing_counts - counts).max() <= 1


def test_tensors_that_require_grad_and_missing_biases_are_taken_as_they_are():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    first, second = torch.nn.Linear(4, 5, bias=False), torch.nn.Linear(5, 2)
    model = rs.MLP.from_weights([(first.weight, first.bias), (second.weight, second.bias)],
                                layout="torch")
    np.testing.assert_array_equal(model.layers[0].weight, first.weight.detach().numpy().T)
    np.testing.assert_array_equal(model.layers[0].bias, np.zeros(5, np.float32))
    net = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    x = torch.randn(30, 4, requires_grad=True)
    np.testing.assert_array_equal(rs.scan(net, x).layers[0].firing_counts,
                                  rs.scan(model, x.detach().numpy()).layers[0].firing_counts)
    np.testing.assert_array_equal(model.forward(x), model.forward(x.detach().numpy()))
