"""The monitors' outputs in unusual runs: no scans, weights gone non-finite, named layers."""

import json

import pytest

torch = pytest.importorskip("torch")
rt = pytest.importorskip("reluscope.torch")


def small_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def test_a_monitor_without_scans_still_writes_its_record():
    net = small_net()
    with rt.DeadUnitMonitor(net) as monitor:
        net(torch.randn(5, 6))
        monitor.end_epoch()
        record = monitor.to_dict()
    json.dumps(record, allow_nan=False)
    assert record["dead_counts"] == []


def test_a_weight_change_that_is_not_finite_is_written_as_null():
    net = small_net(1)
    x = torch.randn(40, 6)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    with torch.no_grad():
        net[0].bias[:3] = -100.0  # three dead units, whose weights a NaN step then moves
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        net(x)  # the training forward of the step
        for parameter in net.parameters():
            parameter.grad = torch.full_like(parameter, float("nan"))
        optimizer.step()
        monitor.end_epoch()
        record = monitor.to_dict()
    changes = [change for *_, change in record["moved_while_dead"]]
    assert changes and all(change is None for change in changes)
    json.dumps(record, allow_nan=False)


def test_the_certificate_table_names_layers_as_the_layer_tables_do():
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16),
                              torch.nn.ReLU(), torch.nn.Linear(16, 3))
    x = torch.randn(200, 6)
    y = torch.randint(0, 3, (200,))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05)
    with rt.DeadUnitMonitor(net, x_scan=x, optimizer=optimizer) as monitor:
        for step in range(30):
            optimizer.param_groups[0]["lr"] = 50.0 if step == 10 else 0.05
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            optimizer.step()
        monitor.end_epoch()
    trained = [c for c in monitor.certificates if c.cause != "born dead"]
    assert trained, "the huge step killed no unit"
    table = monitor.summary().split("death certificates")[1].splitlines()[2:]
    names = {"0", "2"}  # module paths of the two hidden Linear layers
    assert table and all(line.split()[0] in names for line in table if not line.strip()
                         .startswith("..."))
    assert any(line.split()[0] == "2" for line in table) or all(
        c.layer == 0 for c in trained)
