"""reluscope.torch.DeadUnitMonitor in a plain PyTorch training loop."""

import gc
import json
import weakref

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from test_scan_and_monitor import assert_ledger_adds_up
from torch import nn
from torch.nn import functional

import reluscope.torch as rt

HUGE_STEP = 11  # 1-based optimizer step taken at 1000 times the learning rate
BATCH = 97      # a size no unit count or scan size shares, to spot a held batch


def task(n=388, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return x, y


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(),
                         nn.Linear(16, 2))


def train(net, optimizer, monitor, x, y, epochs, huge_step=None):
    """The user's loop; the monitor adds only ``end_epoch``."""
    batches = [(x[start:start + BATCH], y[start:start + BATCH])
               for start in range(0, len(x), BATCH)]
    train_on(batches, net, optimizer, monitor, epochs, huge_step)


def train_on(batches, net, optimizer, monitor, epochs, huge_step=None):
    """``epochs`` passes over ``batches`` of (x, y), the step ``huge_step`` (1-based) at
    1000 times the learning rate, and ``monitor.end_epoch()`` after each pass."""
    step = 0
    for _ in range(epochs):
        for x, y in batches:
            loss = functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            step += 1
            step_at_scaled_lr(optimizer, 1e3 if step == huge_step else 1.0)
        monitor.end_epoch()


def step_at_scaled_lr(optimizer, scale):
    """``optimizer.step()`` with every group's learning rate times ``scale``, for this step only."""
    for group in optimizer.param_groups:
        group["lr"] *= scale
    optimizer.step()
    for group in optimizer.param_groups:
        group["lr"] /= scale


def test_certificates_name_the_huge_step():
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        train(net, optimizer, monitor, x, y, epochs=5, huge_step=HUGE_STEP)
    killed = [c for c in monitor.certificates if c.last_fired_step == HUGE_STEP]
    assert killed, monitor.summary()
    for c in killed:
        assert c.confirmed_by_scan_after_epoch == 3  # steps 9-12 are epoch 3 (4 per epoch)
        assert c.lr == pytest.approx(50.0)
        assert c.cause == "large update"
        assert c.relative_update > 0 and c.update_norm > 0
        assert c.layer_median_relative_update > 0
    assert monitor.steps == [0, 4, 8, 12, 16, 20]
    assert "large update" in monitor.summary()
    assert "epoch  layer 0  layer 2" in monitor.summary()  # layers named by module path
    json.dumps(monitor.to_dict())
    assert monitor.to_dict()["layer_names"] == ["0", "2"]


@pytest.mark.parametrize("update_path", ["auto", "copy"])
def test_the_update_record_is_the_update_the_step_made(update_path):
    # One step, by hand: the record of a unit that fired is ||dw_j||, db_j and
    # ||dw_j|| / ||w_j||, with the layer's upper medians, as the native trainer's.
    # "auto" reads SGD's momentum buffer: the update before w + dw was rounded to float32,
    # which differs from the stored difference by up to 2^-24 ||w_j|| (2^-24 |b_j|).
    x, y = task(n=BATCH)
    net = small_net(seed=3)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    monitor = rt.DeadUnitMonitor(net, optimizer=optimizer, update_path=update_path)
    w0, b0 = net[0].weight.detach().clone(), net[0].bias.detach().clone()
    with torch.no_grad():
        fired = (net[0](x) > 0).any(0)
    functional.cross_entropy(net(x), y).backward()
    optimizer.step()
    monitor.close()
    assert monitor.update_sources[0] == ("copy" if update_path == "copy"
                                         else "sgd momentum buffer")
    stats = monitor.last_firing_stats()[0]
    w1, b1 = net[0].weight.detach(), net[0].bias.detach()
    norm = (w1 - w0).norm(dim=1)
    relative = norm / w0.norm(dim=1)
    rounding = 0.0 if update_path == "copy" else 2.0 ** -23
    for unit in range(24):
        record = stats.last_fired(unit)
        if not fired[unit]:
            assert record is None
            continue
        slack = rounding * float(w1[unit].norm())
        assert record["step"] == 1 and record["lr"] == pytest.approx(0.1)
        assert record["update_norm"] == pytest.approx(float(norm[unit]), rel=1e-5, abs=slack)
        assert record["bias_update"] == pytest.approx(
            float(b1[unit] - b0[unit]), rel=1e-5, abs=1e-8 + rounding * abs(float(b1[unit])))
        assert record["relative_update"] == pytest.approx(
            float(relative[unit]), rel=1e-5, abs=slack / float(w0[unit].norm()))
        assert record["layer_median_update_norm"] == pytest.approx(
            float(norm.sort().values[12]), rel=1e-5, abs=rounding * float(w1.norm(dim=1).max()))


def test_deaths_and_revivals_agree_with_the_scans():
    x, y = task()
    net = small_net(seed=1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        train(net, optimizer, monitor, x, y, epochs=4, huge_step=3)
    reports = monitor.reports
    assert len(reports) == 5
    for index, epoch in enumerate(monitor.epochs):
        for layer in range(2):
            dead_now = set(reports[index].layers[layer].dead_units.tolist())
            dead_before = (set() if index == 0
                           else set(reports[index - 1].layers[layer].dead_units.tolist()))
            assert {u for e, k, u in monitor.deaths if e == epoch and k == layer} == (
                dead_now - dead_before)
            assert {u for e, k, u in monitor.revivals if e == epoch and k == layer} == (
                dead_before - dead_now)
    fresh = rt.scan(net, x)
    for kept, now in zip(reports[-1].layers, fresh.layers):
        np.testing.assert_array_equal(kept.firing_counts, now.firing_counts)
    assert len(monitor.certificates) == len(monitor.deaths)


def test_silent_units_are_those_a_plain_hook_count_finds():
    x, y = task()
    net = small_net(seed=2)
    with torch.no_grad():
        net[2].bias[[1, 7]] = -100.0
    counts = [torch.zeros(24, dtype=torch.long), torch.zeros(16, dtype=torch.long)]

    def counter(index):
        def hook(module, args, output):  # the plain forward-hook recipe
            if module.training:
                counts[index] += (output > 0).sum(0)
        return hook

    handles = [net[1].register_forward_hook(counter(0)), net[3].register_forward_hook(counter(1))]
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    monitor = rt.DeadUnitMonitor(net, optimizer=optimizer)
    train(net, optimizer, monitor, x, y, epochs=1)
    epoch, silent = monitor.silent[0]
    assert epoch == 1
    for units, plain in zip(silent, counts):
        np.testing.assert_array_equal(units, np.flatnonzero(plain.numpy() == 0))
    assert {1, 7} <= set(silent[1].tolist())
    # The counts themselves, in the next epoch; an eval forward is not counted.
    for plain in counts:
        plain.zero_()
    net(x[:50])
    net(x[50:130])
    net.eval()
    net(x)
    for counted, plain in zip(monitor.epoch_firing_counts(), counts):
        np.testing.assert_array_equal(counted, plain.numpy())
    monitor.close()
    for handle in handles:
        handle.remove()


def test_close_removes_every_hook():
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    monitor = rt.DeadUnitMonitor(net, x_scan=task()[0], optimizer=optimizer)
    assert net._forward_hooks and optimizer._optimizer_step_pre_hooks
    monitor.close()
    for module in net.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
    assert not optimizer._optimizer_step_pre_hooks
    assert not optimizer._optimizer_step_post_hooks
    monitor.summary()  # the results stay readable


def test_a_closed_monitor_keeps_nothing_alive_in_reference_cycles():
    # Freed by reference counting, with no garbage collection: a cycle through the
    # site watcher's callbacks kept the model until the next collection, which at a
    # process's exit came during interpreter shutdown (a DDP process then aborted in
    # PyTorch's gloo threads).
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = task()
    gc.collect()
    gc.disable()
    try:
        with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
            optimizer.zero_grad()
            functional.cross_entropy(net(x), y).backward()
            optimizer.step()
            monitor.end_epoch()
        alive = [weakref.ref(net), weakref.ref(monitor), weakref.ref(optimizer)]
        del net, monitor, optimizer
        assert [ref() is not None for ref in alive] == [False, False, False]
    finally:
        gc.enable()


def _tensors_reachable(root, skip):
    """Every tensor reachable from ``root`` through attributes and containers, not
    entering the objects in ``skip`` (the user's module, optimizer and data)."""
    found, seen, stack = [], {id(s) for s in skip}, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
        elif isinstance(obj, weakref.ref):
            continue  # a weak reference keeps nothing alive
        elif isinstance(obj, dict):
            stack += list(obj.keys()) + list(obj.values())
        elif isinstance(obj, (list, tuple, set)):
            stack += list(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack += list(vars(obj).values())
    return found


def test_no_activation_outlives_its_batch():
    x, y = task()
    net = small_net()
    outputs = []
    net[0].register_forward_hook(lambda module, args, output: outputs.append(weakref.ref(output)))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    monitor = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer)
    train(net, optimizer, monitor, x, y, epochs=1)
    gc.collect()
    assert outputs and all(ref() is None for ref in outputs)
    # By design: what the monitor keeps is per unit, never per sample.
    kept = _tensors_reachable(monitor, skip=[net, optimizer, x, monitor.x_scan])
    assert kept and all(BATCH not in t.shape and len(x) not in t.shape for t in kept)
    monitor.close()


def test_a_conv_net_in_training():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 8),
                        nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        net[0].bias[2] = -1e3
    x = torch.randn(64, 1, 6, 6)
    y = (x.mean((1, 2, 3)) > 0).long()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
    with rt.DeadUnitMonitor(net, x_scan=loader, optimizer=optimizer) as monitor:
        for xb, yb in loader:
            optimizer.zero_grad()
            functional.cross_entropy(net(xb), yb).backward()
            optimizer.step()
        monitor.end_epoch()
    assert monitor.layer_names == ["0", "3"]
    assert (0, 0, 2) in monitor.deaths  # dead from the start: born dead
    assert [c.cause for c in monitor.certificates if c.layer == 0 and c.unit == 2] == [
        "born dead"]
    assert 2 in monitor.silent[0][1][0]


def test_without_an_optimizer_certificates_carry_no_update():
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    monitor = rt.DeadUnitMonitor(net, x_scan=x)
    train(net, optimizer, monitor, x, y, epochs=3, huge_step=2)
    monitor.close()
    assert monitor.steps == [0, 4, 8, 12]  # training forward passes
    assert all(c.last_fired_step is None for c in monitor.certificates)
    assert monitor.to_dict()["steps_counted"] == "training forward passes"


def test_the_html_report(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        train(net, optimizer, monitor, x, y, epochs=2, huge_step=3)
    monitor.to_html(tmp_path / "report.html")
    page = (tmp_path / "report.html").read_text()
    assert "Death certificates" in page and "data:image/png;base64" in page


def test_x_scan_must_be_scannable_again():
    x, _ = task()
    with pytest.raises(TypeError, match="one-pass iterator"):
        rt.DeadUnitMonitor(small_net(), x_scan=iter([x]))


# The scan path. An MLP-shaped module is scanned by the C++ core on its converted weights;
# hooks scan anything else, and whatever the C++ scan cannot answer as the hooks would.

def _pre_activations(net, x):
    """Per hidden layer of the Sequential ``net``, its pre-activations on x in float64."""
    pre, layer_input = [], x.double()
    with torch.no_grad():
        for module in net:  # Dropout: the identity at scan time
            if isinstance(module, nn.Linear):
                layer_input = functional.linear(layer_input, module.weight.double(),
                                                module.bias.double())
            elif isinstance(module, (nn.ReLU, nn.LeakyReLU)):
                pre.append(layer_input)
                layer_input = module(layer_input)
    return pre


def _assert_equal_up_to_rounding(a, b, path="to_dict()"):
    """JSON trees equal, floats within float32 rounding of a few hundred terms."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_equal_up_to_rounding(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _assert_equal_up_to_rounding(u, v, f"{path}[{i}]")
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6), path
    else:
        assert a == b, path


class _BothPaths:
    """Two monitors on one module, one per scan path, and each unit's distance to 0 (the
    smallest |pre-activation| over x) at each scan."""

    def __init__(self, net, x, optimizer, **kwargs):
        self.net, self.x = net, x
        self.cpp = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer, **kwargs)
        self.hooks = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer, scan_path="hooks",
                                        **kwargs)
        self.distance_to_zero = [self._distances()]

    def _distances(self):
        return [pre.abs().amin(0).numpy() for pre in _pre_activations(self.net, self.x)]

    def end_epoch(self):
        self.cpp.end_epoch()
        self.hooks.end_epoch()
        self.distance_to_zero.append(self._distances())

    def close(self):
        self.cpp.close()
        self.hooks.close()

    def assert_same_scans(self):
        """Both paths compute float32 pre-activations, summed in other orders: a firing
        count may differ only for a unit within rounding of 0 on some sample."""
        for scan, (a, b) in enumerate(zip(self.cpp.reports, self.hooks.reports, strict=True)):
            for layer, (mine, theirs) in enumerate(zip(a.layers, b.layers, strict=True)):
                assert mine.name == theirs.name
                differ = mine.firing_counts != theirs.firing_counts
                assert (self.distance_to_zero[scan][layer][differ] < 1e-5).all()
        _assert_equal_up_to_rounding(self.cpp.to_dict(), self.hooks.to_dict())


def test_the_summary_reconciles_deaths_revivals_and_the_latest_scan():
    x, y = task()
    net = small_net(seed=5)
    with torch.no_grad():
        net[2].bias[[1, 7]] = -100.0  # planted: dead from the start
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        train(net, optimizer, monitor, x, y, epochs=6, huge_step=3)
    died, revived, _ = assert_ledger_adds_up(monitor, labels=["0", "2"])  # module paths
    assert died and revived


def test_an_mlp_is_scanned_by_the_cpp_core_as_by_the_hooks():
    x, y = task()
    net = small_net(seed=5)
    with torch.no_grad():
        net[2].bias[[1, 7]] = -100.0  # planted: dead from the start
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    both = _BothPaths(net, x, optimizer)
    train(net, optimizer, both, x, y, epochs=6, huge_step=3)
    both.close()
    cpp, hooks = both.cpp, both.hooks
    assert cpp.scan_paths == ["c++"] * 7 and hooks.scan_paths == ["hooks"] * 7
    # A run with deaths of several causes, and a revival.
    assert {(0, 1, 1), (0, 1, 7)} <= set(cpp.deaths) and len(cpp.deaths) > 3
    assert cpp.revivals
    assert {c.cause for c in cpp.certificates} >= {"born dead", "large update"}
    assert cpp.deaths == hooks.deaths and cpp.revivals == hooks.revivals
    assert cpp.moved_while_dead == hooks.moved_while_dead
    assert [c.to_dict() for c in cpp.certificates] == [c.to_dict() for c in hooks.certificates]
    both.assert_same_scans()  # here every firing count is equal: no unit is that close to 0
    for key in ("first", "latest"):
        for mine, theirs in zip(cpp.activation_samples[key], hooks.activation_samples[key]):
            np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert cpp.summary() == hooks.summary()


def test_a_leaky_mlp_takes_the_cpp_path():
    x, y = task()
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(6, 24), nn.LeakyReLU(0.1), nn.Dropout(0.2),
                        nn.Linear(24, 16), nn.LeakyReLU(0.1), nn.Linear(16, 2))
    with torch.no_grad():
        net[0].bias[3] = -100.0
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    both = _BothPaths(net, x, optimizer)
    train(net, optimizer, both, x, y, epochs=2, huge_step=3)
    both.close()
    assert both.cpp.scan_paths == ["c++"] * 3
    assert both.cpp.layer_names == both.hooks.layer_names == ["0", "3"]
    assert both.cpp.leaky and (0, 0, 3) in both.cpp.deaths
    both.assert_same_scans()


@pytest.mark.parametrize("case", ["data loader", "list of batches", "float64", "conv"])
def test_what_does_not_convert_is_scanned_through_hooks(case):
    x, _ = task()
    net, x_scan = small_net(), x
    if case == "data loader":
        x_scan = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=64)
    elif case == "list of batches":
        x_scan = [x[:200], x[200:]]
    elif case == "float64":
        net = net.double()
    else:
        net = nn.Sequential(nn.Unflatten(1, (1, 6)), nn.Conv1d(1, 4, 3), nn.ReLU(),
                            nn.Flatten(), nn.Linear(16, 2))
    with rt.DeadUnitMonitor(net, x_scan=x_scan) as monitor:
        monitor.end_epoch()
    assert monitor.scan_paths == ["hooks", "hooks"]


def test_the_hooks_take_over_a_scan_the_cpp_core_cannot_answer():
    x, _ = task()
    net = small_net()
    monitor = rt.DeadUnitMonitor(net, x_scan=x)
    with torch.no_grad():
        net[2].weight[4, 0] = float("nan")  # a diverged unit: the C++ scan refuses NaN
    monitor.end_epoch()
    assert monitor.scan_paths == ["c++", "hooks"]
    assert (1, 1, 4) in monitor.deaths  # NaN > 0 is false: the hooks count it as not firing
    with torch.no_grad():
        net[2].weight[4, 0] = 0.0
    monitor.end_epoch()
    assert monitor.scan_paths[-1] == "c++"
    net[3] = nn.Identity()  # the second layer is no longer a unit's layer
    epoch, silent = monitor.epoch, len(monitor.silent)
    with pytest.raises(RuntimeError, match="sites changed"):
        monitor.end_epoch()
    assert (monitor.epoch, len(monitor.silent)) == (epoch, silent)  # nothing booked
    monitor.close()


def _narrower(net, layer, width):
    """Linear ``net[layer]``'s weight swapped in place for one of ``width`` rows, the next
    Linear's (``net[layer + 2]``) to match (nn.Linear.out_features is not updated)."""
    with torch.no_grad():
        net[layer].weight = nn.Parameter(net[layer].weight[:width].clone())
        net[layer].bias = nn.Parameter(net[layer].bias[:width].clone())
        net[layer + 2].weight = nn.Parameter(net[layer + 2].weight[:, :width].clone())


def _monitored_net():
    """The task, a small net, its SGD optimizer and a monitor scanning the task."""
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    return x, y, net, optimizer, rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer)


def test_a_layer_narrowed_under_the_monitor_is_named_in_the_training_forward():
    x, y, net, optimizer, monitor = _monitored_net()
    train(net, optimizer, monitor, x, y, epochs=1)
    _narrower(net, 0, 20)
    with pytest.raises(ValueError, match="layer '0' has 20 units where it had 24"):
        net(x[:BATCH])
    monitor.close()
    assert net(x[:BATCH]).shape == (BATCH, 2)  # the hooks are gone, the module runs


def test_a_layer_narrowed_before_any_training_forward_is_refused_and_can_be_restored():
    # The scan saw 24 units; the first training forward must not start counting 20.
    x, y, net, optimizer, monitor = _monitored_net()
    original = [net[0].weight, net[0].bias, net[2].weight]
    _narrower(net, 0, 20)
    with pytest.raises(ValueError, match="layer '0' has 20 units where it had 24"):
        net(x[:BATCH])
    net[0].weight, net[0].bias, net[2].weight = original
    train(net, optimizer, monitor, x, y, epochs=1)  # the monitor goes on as if nothing happened
    assert monitor.epoch == 1 and len(monitor.history.reports) == 2
    monitor.close()


def test_a_refused_training_forward_counts_no_site():
    # The second layer narrowed: the forward is refused before the first layer counts.
    x, _ = task()
    net = small_net()
    monitor = rt.DeadUnitMonitor(net, x_scan=x)  # no optimizer: step counts training forwards
    net(x[:10])
    before = monitor.epoch_firing_counts()
    _narrower(net, 2, 12)
    with pytest.raises(ValueError, match="layer '2' has 12 units where it had 16"):
        net(x[:10])
    after = monitor.epoch_firing_counts()
    assert all(np.array_equal(a, b) for a, b in zip(after, before))
    assert monitor.step == 1
    monitor.close()


def test_a_layer_narrowed_between_epochs_is_refused_with_nothing_booked():
    x, y, net, optimizer, monitor = _monitored_net()
    train(net, optimizer, monitor, x, y, epochs=1)
    epoch, silent, scans = monitor.epoch, len(monitor.silent), len(monitor.history.reports)
    _narrower(net, 0, 20)
    with pytest.raises(ValueError, match="layer '0' has 20 units where it had 24"):
        monitor.end_epoch()
    assert (monitor.epoch, len(monitor.silent), len(monitor.history.reports)) == (
        epoch, silent, scans)
    monitor.close()


def test_scan_path_is_checked():
    with pytest.raises(ValueError, match="scan_path must be one of"):
        rt.DeadUnitMonitor(small_net(), x_scan=task()[0], scan_path="c++")


# What the training forwards do not show is unknown, not silent.

def dropout_net(seed=0):
    """Layer "0" reaches its ReLU through a Dropout in training (a new tensor), straight in
    eval mode; layer "3" reaches its ReLU straight in both."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 5),
                         nn.ReLU(), nn.Linear(5, 2))


def test_a_layer_behind_dropout_in_training_is_unobserved_not_silent():
    x, y = task()
    net = dropout_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    monitor = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer)
    with pytest.warns(RuntimeWarning, match=r"'0' feed a ReLU in the scan.*nn\.Dropout"):
        train(net, optimizer, monitor, x, y, epochs=1)
    train(net, optimizer, monitor, x, y, epochs=1)  # said once: no second warning
    net(x[:BATCH])  # epoch 3 so far
    counts = monitor.epoch_firing_counts()
    monitor.close()
    assert monitor.layer_names == ["0", "3"]
    assert monitor.unobserved == [(1, [0]), (2, [0])]
    assert counts[0] is None and counts[1].shape == (5,)
    for _, silent in monitor.silent:
        assert silent[0].size == 0  # not "all 8 units silent"
    assert rt.scan(net, x).layers[0].n_dead == monitor.reports[-1].layers[0].n_dead
    stats = monitor.last_firing_stats()
    assert all(stats[0].last_fired(unit) is None for unit in range(8))  # no step to report
    assert any(stats[1].last_fired(unit) is not None for unit in range(5))  # layer 3 is seen
    assert monitor.to_dict()["unobserved_during_epoch"] == [{"epoch": 1, "layers": [0]},
                                                            {"epoch": 2, "layers": [0]}]


def test_training_in_eval_mode_lists_no_unit_as_silent():
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    monitor = rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer)
    net.eval()
    with pytest.warns(RuntimeWarning, match="no forward pass ran in training mode"):
        train(net, optimizer, monitor, x, y, epochs=1)
    monitor.end_epoch()  # no step, no forward: a scan-only epoch, nothing to say
    monitor.close()
    assert monitor.unobserved == [(1, [0, 1]), (2, [0, 1])]
    assert all(units.size == 0 for _, silent in monitor.silent for units in silent)
    assert monitor.epoch_firing_counts() == [None, None]
    assert all(stats.last_fired(unit) is None
               for stats in monitor.last_firing_stats() for unit in range(stats.n_units))


def test_a_param_group_added_mid_training_is_tracked():
    # Progressive unfreezing: the first layer joins the optimizer after epoch 1.
    x, y = task()
    net = small_net(seed=1)
    head = [p for layer in (net[2], net[4]) for p in layer.parameters()]
    optimizer = torch.optim.SGD(head, lr=0.05)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        train(net, optimizer, monitor, x, y, epochs=1)
        first, second = monitor.last_firing_stats()
        assert all(first.last_fired(unit) is None for unit in range(24))
        assert second.last_fired(int(np.argmax(monitor.reports[-1].layers[1].firing_counts)))
        optimizer.add_param_group({"params": net[0].parameters(), "lr": 0.01})
        train(net, optimizer, monitor, x, y, epochs=1)
    first = monitor.last_firing_stats()[0]
    records = [first.last_fired(unit) for unit in range(24)]
    fired = [r for r in records if r is not None]
    assert fired and all(r["step"] > 4 and r["lr"] == pytest.approx(0.01) for r in fired)
    assert max(r["step"] for r in fired) == 8


def test_bad_arguments_say_what_is_accepted():
    x, _ = task()
    with pytest.raises(TypeError, match="x_scan must be a tensor, an array.*got int"):
        rt.DeadUnitMonitor(small_net(), x_scan=3)
    with pytest.raises(TypeError, match="x_scan must be a tensor, an array.*got a dict"):
        rt.DeadUnitMonitor(small_net(), x_scan={"x": x})
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer.*got str"):
        rt.DeadUnitMonitor(small_net(), x_scan=x, optimizer="sgd")


@pytest.mark.parametrize("scan_path", ["auto", "hooks"])
def test_deaths_in_a_torch_loop_are_attributed_like_the_native_ones(scan_path):
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.5, weight_decay=1e-3)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer, scan_path=scan_path) as monitor:
        train(net, optimizer, monitor, x, y, epochs=5, huge_step=HUGE_STEP)
    trained = [c for c in monitor.certificates if c.cause != "born dead"]
    assert trained, monitor.summary()
    for c in trained:
        assert c.attribution is not None and c.note is None, c
        assert c.attribution.weights + c.attribution.bias + c.attribution.upstream == (
            pytest.approx(c.attribution.fall))
        assert "weight decay" in c.conditions
        if c.layer == 0:
            assert c.attribution.upstream == 0.0


def test_deaths_seen_through_a_data_loader_say_why_they_are_unclassified():
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    loader = torch.utils.data.DataLoader(x, batch_size=100)
    with rt.DeadUnitMonitor(net, x_scan=loader, optimizer=optimizer) as monitor:
        train(net, optimizer, monitor, x, y, epochs=4, huge_step=HUGE_STEP)
    trained = [c for c in monitor.certificates if c.cause != "born dead"]
    assert trained
    assert all(c.cause == "unclassified" and "2-D array" in c.note for c in trained)
    assert "unclassified: the scanned data are not one 2-D array" in monitor.summary()


def test_the_first_step_made_with_a_closure_has_its_records():
    # With a closure (Lightning's automatic optimization), the forward pass that finds
    # the layers runs inside optimizer.step(), after the step's pre-hook: the first
    # step's updates must still be recorded, for the units that fired in it.
    x, y = task()
    net = small_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)

    def closure():
        optimizer.zero_grad()
        loss = functional.cross_entropy(net(x), y)
        loss.backward()
        return loss

    # No x_scan: nothing runs the module before the first step.
    with rt.DeadUnitMonitor(net, optimizer=optimizer) as monitor:
        optimizer.step(closure)
        assert monitor.update_sources == ["copy", "copy"]
        stats = monitor.last_firing_stats()
        for layer, unit_stats in enumerate(stats):
            fired = monitor.epoch_firing_counts()[layer] > 0
            records = unit_stats.last_firing
            assert fired.any()
            assert (records["step"][fired] == 1).all(), layer
            assert (records["update_norm"][fired] > 0).all(), layer
            assert (records["step"][~fired] == -1).all(), layer
        # Producers found only by the closure's forward: the layer feeding no ReLU
        # (the output Linear) is not tracked after the first step either.
        optimizer.step(closure)
        assert monitor.update_sources == ["copy", "copy"]
        assert monitor.step == 2
