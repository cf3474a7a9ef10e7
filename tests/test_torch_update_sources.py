"""Where reluscope.torch.DeadUnitMonitor reads each step's update: from torch.optim.SGD's own
terms (the gradient, the momentum buffer) where they are the update, by copying the weights
otherwise; both give the same last-firing records up to float32 rounding."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from test_torch_monitor import (
    BATCH,
    _assert_equal_up_to_rounding,
    small_net,
    step_at_scaled_lr,
    task,
    train,
)
from torch.nn import functional

import reluscope.torch as rt

FLOAT_FIELDS = ("update_norm", "bias_update", "relative_update", "layer_median_update_norm",
                "layer_median_bias_update", "layer_median_relative_update")
ROUNDING = 2.0 ** -23  # twice float32's unit roundoff


def _sgd(**options):
    return lambda params: torch.optim.SGD(params, **options)


def _no_decay_on_biases(params):
    """The common split: weight decay on the weights, none (and another lr) on the biases."""
    params = list(params)
    return torch.optim.SGD([{"params": [p for p in params if p.dim() > 1], "weight_decay": 1e-2},
                            {"params": [p for p in params if p.dim() == 1], "lr": 0.03}],
                           lr=0.1, momentum=0.9)


class _PlainDescent(torch.optim.Optimizer):
    """An optimizer of the user's own: p -= lr * grad."""

    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


class _SGDSubclass(torch.optim.SGD):
    """A subclass may change what step does: it is not read as SGD."""


SOURCES = {
    "plain": (_sgd(lr=0.1), "sgd gradient"),
    "weight decay": (_sgd(lr=0.1, weight_decay=0.05), "sgd gradient"),
    "maximize": (_sgd(lr=0.1, weight_decay=0.05, maximize=True), "sgd gradient"),
    "momentum": (_sgd(lr=0.1, momentum=0.9), "sgd momentum buffer"),
    "momentum, foreach": (_sgd(lr=0.1, momentum=0.9, foreach=True), "sgd momentum buffer"),
    "momentum, per tensor": (_sgd(lr=0.1, momentum=0.9, foreach=False),
                             "sgd momentum buffer"),
    "momentum, dampening, decay, maximize": (
        _sgd(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05, maximize=True),
        "sgd momentum buffer"),
    "no decay on biases": (_no_decay_on_biases, "sgd momentum buffer"),
    "nesterov": (_sgd(lr=0.1, momentum=0.9, nesterov=True), "copy"),
    "nesterov, foreach": (_sgd(lr=0.1, momentum=0.9, nesterov=True, foreach=True), "copy"),
    "fused": (_sgd(lr=0.1, momentum=0.9, fused=True), "copy"),
    "adam": (lambda params: torch.optim.Adam(params, lr=1e-2), "copy"),
    "adamw": (lambda params: torch.optim.AdamW(params, lr=1e-2), "copy"),
    "own optimizer": (lambda params: _PlainDescent(params, lr=0.1), "copy"),
    "SGD subclass": (lambda params: _SGDSubclass(params, lr=0.1), "copy"),
}


def _records(monitor):
    return [stats.last_firing for stats in monitor.last_firing_stats()]


def _assert_same_records(read, copied, weights_before, weights_after, biases_after, step):
    """The records the step just wrote agree within the rounding of the stored weights.

    The copy reads the update as ``w_after - w_before``, exact in float32: the update the
    stored weights show. The SGD terms give the update the optimizer computed, before
    ``w_before + dw`` was rounded to float32: per weight they differ by at most
    2^-24 |w_after|, so per unit by at most 2^-24 ||w_after_j|| in norm (2^-24 |b_after_j|
    for the bias). On top, 1e-5 relative for the norms summed in other orders.
    """
    for layer, (mine, theirs) in enumerate(zip(read, copied, strict=True)):
        np.testing.assert_array_equal(mine["step"], theirs["step"])
        np.testing.assert_array_equal(mine["lr"], theirs["lr"])
        now = mine["step"] == step
        norm_slack = ROUNDING * torch.linalg.vector_norm(weights_after[layer], dim=1).numpy()
        slack = {"update_norm": norm_slack,
                 "bias_update": ROUNDING * biases_after[layer].abs().numpy(),
                 "relative_update": norm_slack / torch.linalg.vector_norm(
                     weights_before[layer], dim=1).numpy()}
        for field in FLOAT_FIELDS:
            # A median moves by at most the largest move of the values it is taken from.
            allowed = slack.get(field, None)
            if allowed is None:
                allowed = slack[field.replace("layer_median_", "")].max()
            np.testing.assert_allclose(mine[field][now], theirs[field][now], rtol=1e-5,
                                       atol=np.broadcast_to(allowed, now.shape)[now].max(),
                                       err_msg=f"layer {layer}, {field}")


def _train_both_ways(make_optimizer, steps=8, huge_step=3, freeze_first=False):
    """One training run watched by two monitors, one per update path; the records of each
    step compared as it is taken. Returns the "auto" monitor's update sources."""
    x, y = task()
    net = small_net(seed=2)
    optimizer = make_optimizer(net.parameters())
    if freeze_first:  # in the optimizer, but without a gradient: SGD skips it
        net[0].requires_grad_(False)
    auto = rt.DeadUnitMonitor(net, optimizer=optimizer)
    copy = rt.DeadUnitMonitor(net, optimizer=optimizer, update_path="copy")
    producers = [net[0], net[2]]
    sources = set()
    for step in range(1, steps + 1):
        start = (step - 1) * BATCH % len(x)
        loss = functional.cross_entropy(net(x[start:start + BATCH]), y[start:start + BATCH])
        optimizer.zero_grad()
        loss.backward()
        before = [p.weight.detach().clone() for p in producers]
        step_at_scaled_lr(optimizer, 1e3 if step == huge_step else 1.0)
        assert copy.update_sources == ["copy", "copy"]
        sources.add(tuple(auto.update_sources))
        _assert_same_records(_records(auto), _records(copy), before,
                             [p.weight.detach() for p in producers],
                             [p.bias.detach() for p in producers], step)
    auto.close()
    copy.close()
    assert len(sources) == 1, sources  # the same path at every step
    return sources.pop()


@pytest.mark.parametrize("case", SOURCES)
def test_each_optimizer_reads_the_update_the_copy_reads(case):
    make_optimizer, source = SOURCES[case]
    assert _train_both_ways(make_optimizer) == (source, source)


def test_a_layer_without_gradient_is_not_updated():
    sources = _train_both_ways(_sgd(lr=0.1, momentum=0.9), freeze_first=True)
    assert sources == ("not updated", "sgd momentum buffer")


def test_a_closure_makes_the_gradient_inside_the_step_so_the_weights_are_copied():
    # Before the step, p.grad is the last step's, taken at other weights: read from it, the
    # update would be wrong.
    x, y = task(n=BATCH)
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = rt.DeadUnitMonitor(net, optimizer=optimizer)

    def closure():
        optimizer.zero_grad()
        loss = functional.cross_entropy(net(x), y)
        loss.backward()
        return loss

    optimizer.step(closure)  # the sites are found in its forward, inside the step
    w0 = net[0].weight.detach().clone()
    optimizer.step(closure=closure)
    assert monitor.update_sources == ["copy", "copy"]
    monitor.close()
    norms = torch.linalg.vector_norm(net[0].weight.detach() - w0, dim=1).numpy()
    records = monitor.last_firing_stats()[0].last_firing
    fired = records["step"] == 2
    assert fired.any() and (norms[fired] > 0).all()
    np.testing.assert_allclose(records["update_norm"][fired], norms[fired], rtol=1e-6)


def test_a_change_of_momentum_between_steps_changes_the_path():
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = rt.DeadUnitMonitor(net, optimizer=optimizer)
    train(net, optimizer, monitor, x, y, epochs=1)
    assert monitor.update_sources == ["sgd gradient", "sgd gradient"]
    for group in optimizer.param_groups:
        group["momentum"] = 0.5
    train(net, optimizer, monitor, x, y, epochs=1)
    assert monitor.update_sources == ["sgd momentum buffer", "sgd momentum buffer"]
    for group in optimizer.param_groups:
        group["nesterov"] = True
    train(net, optimizer, monitor, x, y, epochs=1)
    assert monitor.update_sources == ["copy", "copy"]
    monitor.close()


def test_certificates_are_the_same_on_both_paths():
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.5, weight_decay=1e-3)
    auto = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer)
    copy = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer, update_path="copy")

    class Both:
        def end_epoch(self):
            auto.end_epoch()
            copy.end_epoch()

    train(net, optimizer, Both(), x, y, epochs=5, huge_step=11)
    auto.close()
    copy.close()
    assert auto.certificates and any(c.last_fired_step == 11 for c in auto.certificates)
    assert auto.update_sources == ["sgd momentum buffer", "sgd momentum buffer"]
    _assert_equal_up_to_rounding(auto.to_dict(), copy.to_dict())


def test_no_source_before_the_first_step_or_without_an_optimizer():
    net = small_net()
    optimizer = torch.optim.SGD(net[2].parameters(), lr=0.1)
    with rt.DeadUnitMonitor(net, x_scan=task()[0], optimizer=optimizer) as monitor:
        assert monitor.update_sources == [None, None]
    with rt.DeadUnitMonitor(net, x_scan=task()[0]) as monitor:
        assert monitor.update_sources == [None, None]


def test_update_path_is_checked():
    with pytest.raises(ValueError, match=r"update_path must be one of \('auto', 'copy'\)"):
        rt.DeadUnitMonitor(small_net(), update_path="copies")
