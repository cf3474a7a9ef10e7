"""reluscope.torch.DeadUnitMonitor under DistributedDataParallel: two gloo ranks on 127.0.0.1
give the deaths and certificates of the same global batches run in one process."""

import datetime
import gc
import json
import os
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
from test_torch_monitor import train_on  # noqa: E402
from torch import nn  # noqa: E402

import reluscope.torch as rt  # noqa: E402

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch built without distributed")

N, GLOBAL_BATCH, EPOCHS, HUGE_STEP, WORLD = 384, 96, 4, 6, 2


def task():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, 6, generator=generator)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 16), nn.ReLU(),
                         nn.Linear(16, 2))


def train(model, optimizer, monitor, batches):
    train_on(batches, model, optimizer, monitor, EPOCHS, HUGE_STEP)


def book(monitor) -> dict:
    """What must match between the runs: deaths, revivals, silent units, certificates."""
    return {
        "deaths": [list(d) for d in monitor.deaths],
        "revivals": [list(r) for r in monitor.revivals],
        "dead_counts": monitor.dead_counts.tolist(),
        "n_samples": [r.n_samples for r in monitor.reports],
        "silent": [[u.tolist() for u in units] for _, units in monitor.silent],
        "names": monitor.layer_names,
        "certificates": [(c.layer, c.unit, c.confirmed_by_scan_after_epoch, c.last_fired_step,
                          c.cause, c.relative_update, c.lr) for c in monitor.certificates],
        "firing": [r.layers[0].firing_counts.tolist() for r in monitor.reports],
    }


def rank_main(process: int, port: int, out: str, world: int = WORLD,
              members: list[int] | None = None) -> None:
    """One process of the job; with ``members``, only those processes train, in a subgroup."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=process, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        run_rank(process, out, members)
    finally:
        # The DDP model and what refers to it may sit in reference cycles that hold
        # the process group; collected only at the interpreter's exit, gloo's
        # threads still dropped tensors then and aborted the process (SIGABRT in
        # PyTorch 2.13's ProcessGroupGloo::runLoop, about one run in three).
        gc.collect()
        dist.destroy_process_group()


def run_rank(process: int, out: str, members: list[int] | None) -> None:
    """The work of one process in rank_main, its objects freed when it returns."""
    group = None if members is None else dist.new_group(members)  # on every process
    if members is not None and process not in members:
        errors = {}
        for name, given in (("outsider", group), ("not a group", "default")):
            try:
                rt.DeadUnitMonitor(net(), process_group=given)
            except (ValueError, TypeError) as error:
                errors[name] = str(error)
        with open(os.path.join(out, "outsider.json"), "w") as file:
            json.dump(errors, file)
        return
    rank = process if members is None else members.index(process)  # in the group
    x, y = task()
    model = nn.parallel.DistributedDataParallel(net(), process_group=group)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    half = GLOBAL_BATCH // WORLD
    mine = [slice(s + rank * half, s + (rank + 1) * half) for s in range(0, N, GLOBAL_BATCH)]
    batches = [(x[rows], y[rows]) for rows in mine]
    shard = x[rank * N // WORLD:(rank + 1) * N // WORLD]  # rank order: rows in order
    with rt.DeadUnitMonitor(model, x_scan=shard, optimizer=optimizer,
                            process_group=group) as monitor:
        train(model, optimizer, monitor, batches)
    held = {"reports": len(monitor.reports), "certificates": len(monitor.certificates),
            "silent": len(monitor.silent)}
    result = {"book": book(monitor), "held": held} if rank == 0 else {"held": held}
    with open(os.path.join(out, f"rank{rank}.json"), "w") as file:
        json.dump(result, file)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_ddp_run_gives_the_deaths_and_certificates_of_one_process(tmp_path):
    torch.multiprocessing.spawn(rank_main, args=(free_port(), str(tmp_path)), nprocs=WORLD,
                                join=True)
    check_against_one_process(tmp_path)


def test_a_subgroup_reduces_over_its_own_ranks_only(tmp_path):
    # Three processes; processes 1 and 2 train in a group of their own (ranks 0 and 1
    # in it), and process 0, outside it, is refused a monitor on that group.
    torch.multiprocessing.spawn(rank_main, args=(free_port(), str(tmp_path), 3, [1, 2]),
                                nprocs=3, join=True)
    outsider = json.loads((tmp_path / "outsider.json").read_text())
    assert "not a member of process_group" in outsider["outsider"]
    assert "must be a torch.distributed.ProcessGroup" in outsider["not a group"]
    check_against_one_process(tmp_path)


def test_a_process_group_without_torch_distributed_is_refused():
    with pytest.raises(ValueError, match="torch.distributed is not initialized"):
        rt.DeadUnitMonitor(net(), process_group=object())


def check_against_one_process(tmp_path) -> None:
    """The ranks' files in tmp_path against the same global batches run in one process."""
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    # Rank 0 keeps the book; the other ranks hold none of it.
    assert ranks[0]["held"]["reports"] == EPOCHS + 1
    assert ranks[1]["held"] == {"reports": 0, "certificates": 0, "silent": 0}

    x, y = task()
    model = net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = [(x[s:s + GLOBAL_BATCH], y[s:s + GLOBAL_BATCH]) for s in range(0, N, GLOBAL_BATCH)]
    with rt.DeadUnitMonitor(model, x_scan=x, optimizer=optimizer) as monitor:
        train(model, optimizer, monitor, batches)
    alone = book(monitor)
    together = ranks[0]["book"]
    assert any(c[3] == HUGE_STEP for c in alone["certificates"]), monitor.summary()
    for key in ("deaths", "revivals", "dead_counts", "n_samples", "silent", "firing", "names"):
        assert together[key] == alone[key], key
    assert len(together["certificates"]) == len(alone["certificates"])
    for mine, theirs in zip(together["certificates"], alone["certificates"]):
        assert tuple(mine[:5]) == theirs[:5]
        np.testing.assert_allclose(mine[5:], theirs[5:], rtol=1e-4)
