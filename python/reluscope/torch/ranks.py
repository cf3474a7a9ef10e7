"""The PyTorch monitor under ``torch.distributed``: each rank's numbers reduced over all ranks.

Under DistributedDataParallel every rank sees its shard of each batch and of
``x_scan``, and all ranks hold the same weights after each step. What each
rank counts is reduced so that every rank ends up with the numbers of the
whole run:

- firing counts in training: SUM (a unit is silent only if it fired on no rank),
  and a layer is seen in training if any rank saw it;
- last-firing records: the step by MAX; the record itself (lr, the update and
  the layer medians, the same on every rank that fired at that step, since the
  weights are the same) from a rank whose step is that MAX;
- scans: firing counts SUM, margins (max pre-activation) MAX, mean |activation|
  as the SUM of each rank's mean times its samples, over all samples;
- the scanned rows themselves, once, to rank 0 (``gather_rows``), so that its
  certificates split margins over the same samples the scans cover.

Everything is reduced over one process group: the default one, or the
``process_group`` the monitor was given (ranks below are ranks in that group).
Outside ``torch.distributed`` (or with one rank) every method returns its input.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

from ..scan import LayerScan, ScanReport
from ..tracking import LAST_FIRING_DTYPE, UnitStats

NOT_A_MEMBER = ("this process is not a member of process_group: create the monitor only on "
                "the ranks of the group it reduces over")


class Ranks:
    """The process group the monitor reduces over, if any (None: the default group)."""

    def __init__(self, group=None):
        initialized = dist.is_available() and dist.is_initialized()
        if group is not None and not initialized:
            raise ValueError("process_group was given but torch.distributed is not "
                             "initialized: call torch.distributed.init_process_group first")
        if group is dist.GroupMember.NON_GROUP_MEMBER:  # what new_group gives non-members
            raise ValueError(NOT_A_MEMBER)
        if group is not None and not isinstance(group, dist.ProcessGroup):
            raise TypeError("process_group must be a torch.distributed.ProcessGroup (as from "
                            f"torch.distributed.new_group), got {type(group).__name__}")
        self.group = group
        self.active = initialized and dist.get_world_size(group) > 1
        self.rank = dist.get_rank(group) if initialized else 0
        if self.rank < 0:
            raise ValueError(NOT_A_MEMBER)
        self.world_size = dist.get_world_size(group) if self.active else 1

    @property
    def writes(self) -> bool:
        """Whether this rank keeps the history, the certificates and writes the files."""
        return self.rank == 0

    def _device(self) -> torch.device:
        # NCCL reduces CUDA tensors only; gloo and MPI reduce CPU ones.
        if dist.get_backend(self.group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _reduce(self, values: np.ndarray, op) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(values)).to(self._device())
        dist.all_reduce(tensor, op=op, group=self.group)
        return tensor.cpu().numpy()

    def firing_counts(self, counts: list[np.ndarray | None], widths: list[int]
                      ) -> list[np.ndarray | None]:
        """Per layer, the training firing counts summed over the ranks (None: no rank saw it)."""
        if not self.active:
            return counts
        seen = self._reduce(np.array([c is not None for c in counts], dtype=np.int64),
                            dist.ReduceOp.MAX)
        packed = np.concatenate([np.zeros(w, np.int64) if c is None else c.astype(np.int64)
                                 for c, w in zip(counts, widths)] or [np.zeros(0, np.int64)])
        total = np.split(self._reduce(packed, dist.ReduceOp.SUM), np.cumsum(widths)[:-1])
        return [t if s else None for t, s in zip(total, seen)]

    def last_firing(self, stats: list[UnitStats]) -> list[UnitStats]:
        """Return the records of the latest step, over all ranks, in which each unit fired."""
        if not self.active:
            return stats
        reduced = []
        for unit_stats in stats:
            records = unit_stats.last_firing.view(np.float64).reshape(unit_stats.n_units, -1)
            step = self._reduce(records[:, 0].copy(), dist.ReduceOp.MAX)
            # Fields from a rank whose step is the latest: -inf elsewhere, so MAX picks them.
            mine = np.where((records[:, :1] == step[:, None]), records, -np.inf)
            fields = self._reduce(mine, dist.ReduceOp.MAX)
            fields[:, 0] = step
            fields[step < 0, 1:] = np.nan  # never fired on any rank
            merged = UnitStats(unit_stats.n_units)
            merged.last_firing[:] = fields.view(LAST_FIRING_DTYPE).reshape(unit_stats.n_units)
            reduced.append(merged)
        return reduced

    def scan_report(self, report: ScanReport) -> ScanReport:
        """Combine this rank's scan of its shard of x_scan with every other rank's."""
        if not self.active:
            return report
        n_total = int(self._reduce(np.array([report.n_samples], np.int64), dist.ReduceOp.SUM)[0])
        layers = []
        for layer in report.layers:
            counts = self._reduce(layer.firing_counts.astype(np.int64), dist.ReduceOp.SUM)
            margins = self._reduce(layer.max_pre_activation.astype(np.float32),
                                   dist.ReduceOp.MAX)
            mean_abs = None
            if layer.mean_abs_activation is not None:
                weighted = layer.mean_abs_activation.astype(np.float64) * report.n_samples
                mean_abs = self._reduce(weighted, dist.ReduceOp.SUM) / max(n_total, 1)
            layers.append(LayerScan(layer.index, counts, margins, n_total, mean_abs, layer.name))
        return ScanReport(layers, n_total)

    def gather_rows(self, x: np.ndarray | None) -> np.ndarray | None:
        """Every rank's rows of x_scan, in rank order, on rank 0 (None on the others)."""
        if not self.active:
            return x
        shards: list[np.ndarray | None] | None = (
            [None] * self.world_size if self.writes else None)
        dist.gather_object(x, shards, group=self.group, group_dst=0)
        if shards is None:  # not rank 0 (self.writes is False)
            return None
        rows = [shard for shard in shards if shard is not None]
        if len(rows) < len(shards):
            return None  # some rank's x_scan is not one 2-D array: no attribution
        return np.concatenate(rows)
