"""The update each unit's incoming weights took right after the last step in which it fired.

Through the optimizer's step hooks (``Optimizer.register_step_pre_hook`` and
``register_step_post_hook``, which run around every ``optimizer.step()``), per unit j,

    ||dw_j||,   db_j,   ||dw_j|| / ||w_j(before)||

with ``w_j(before)`` the unit's weights as the step found them, and the layer's
medians of ||dw||, |db| and the ratio (the upper median, as the native
trainer's), in torch ops on the module's device. Units that fired since the
previous step get these values, with the step number and the lr, in their row
of ``last_firing``: the fields of ``reluscope.tracking.LAST_FIRING_FIELDS``,
filled as the C++ training step fills them. If the unit never fires again, that
row describes the update that killed it.

Where the update is read (``update_source``, one answer per parameter and step):

- ``torch.optim.SGD`` (the class itself, not a subclass), no closure, neither
  ``fused`` nor ``differentiable``, a float lr and weight decay, a dense real
  gradient: the update is one of the step's own terms, as ``sgd.py`` computes
  it on both its per-tensor and foreach paths (read in torch 2.13's source),

      momentum 0:                dw = -lr * (g + weight_decay * w)   (read before the step)
      momentum > 0, no nesterov: dw = -lr * b                        (read after the step)

  where g is the gradient (negated with ``maximize``) and b the momentum buffer
  the step leaves in ``optimizer.state``: dampening, weight decay and the first
  step's ``b = g`` are all inside b. A parameter without a gradient is skipped
  by SGD: its update is 0. Nothing is copied; ``||w_j(before)||`` is one norm
  over the rows before the step. These terms are the update the optimizer
  computed; the copy below gives the update the stored weights show, after
  ``w + dw`` was rounded to float32. The two differ by at most 2^-24 |w| per
  weight, so by at most 2^-24 ||w_j|| in ||dw_j|| (6e-5 of an update a
  thousandth the size of its weights).
- Anything else (nesterov, ``fused``, whose AMP gradient scale and skipped
  steps happen inside the kernel, a closure, which makes the gradient inside
  the step, Adam, AdamW, any other optimizer): each tracked weight and bias is
  copied before the step into buffers allocated once, and the update is
  ``after - before``.

Only producers whose weight the optimizer updates are tracked; which those are is
looked up again whenever the optimizer's parameters change (``add_param_group``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..tracking import LAST_FIRING_DTYPE, LAST_FIRING_FIELDS, UnitStats
from .firing import SiteRegistry, TrainingFiring
from .sites import PRODUCERS

# Where a step's update of one parameter is read.
SGD_GRADIENT = "sgd gradient"
SGD_MOMENTUM_BUFFER = "sgd momentum buffer"
COPY = "copy"
NOT_UPDATED = "not updated"
UPDATE_PATHS = ("auto", "copy")


def update_source(optimizer: torch.optim.Optimizer, group: dict | None,
                  param: torch.Tensor, closure=None, path: str = "auto") -> str:
    """Where the coming ``optimizer.step(closure)``'s update of ``param`` can be read exactly.

    ``group`` is its param group (None: in none). One of SGD_GRADIENT,
    SGD_MOMENTUM_BUFFER, NOT_UPDATED or COPY (see the module docstring).
    ``path="copy"``: always COPY.
    """
    return _source(_group_sources(optimizer, closure, path), group, param)


def _group_sources(optimizer, closure, path: str) -> dict[int, str] | None:
    """Per id(param group), ``_group_source``; None: every parameter is copied.

    Once per step: on a tiny network the Python of a per-param look shows in
    the step time.
    """
    if path == "copy" or type(optimizer) is not torch.optim.SGD or closure is not None:
        return None
    return {id(group): _group_source(group) for group in optimizer.param_groups}


def _source(group_sources: dict[int, str] | None, group: dict | None,
            param: torch.Tensor) -> str:
    if group_sources is None:
        return COPY
    if group is None:
        return NOT_UPDATED  # SGD touches only its own parameters
    return _param_source(group_sources[id(group)], param)


def _group_source(group: dict) -> str:
    """Return what ``torch.optim.SGD`` does with the params of ``group``.

    COPY where its own terms are not the update, else the term, for a param
    that has a dense real gradient.
    """
    if (group.get("fused") or group.get("differentiable")
            or isinstance(group["lr"], torch.Tensor)
            or isinstance(group["weight_decay"], torch.Tensor)):
        return COPY
    if group["momentum"] == 0:
        return SGD_GRADIENT
    # Nesterov adds mu * b to the gradient, in place in p.grad on the foreach path: copy.
    return COPY if group["nesterov"] else SGD_MOMENTUM_BUFFER


def _param_source(group_source: str, param: torch.Tensor) -> str:
    if group_source == COPY:
        return COPY
    grad = param.grad
    if grad is None:
        return NOT_UPDATED  # SGD's _init_group skips it
    return COPY if grad.is_sparse or grad.dtype.is_complex else group_source


class _ParamUpdate:
    """One parameter's update in a step, per unit.

    The norm of each row (the weights into one unit; ``rows=True``) or each
    value (a bias; ``rows=False``).
    """

    def __init__(self, param: torch.Tensor, rows: bool):
        self.param = param
        self.rows = rows
        self.source: str | None = None  # where the last step's update was read
        self.before_norm: torch.Tensor | None = None  # rows: ||p_j|| as the step found it
        self._group: dict | None = None
        # COPY: the parameter before the step (allocated on first need).
        self._before: torch.Tensor | None = None
        # SGD_GRADIENT: the update over lr, measured before the step.
        self._per_lr: torch.Tensor | None = None

    def _norms(self, value: torch.Tensor) -> torch.Tensor:
        # torch's own reduction: at memory speed already (0.22 ms per 4 MB on 1 thread,
        # against 0.25 ms for a one-pass kernel of ours plus the conversions around it).
        return torch.linalg.vector_norm(value.flatten(1), dim=1)

    # Both step methods run inside the tracker's torch.no_grad(): no detach needed.
    def before_step(self, source: str, group: dict | None) -> None:
        self.source, self._group = source, group
        value = self.param
        if source == COPY:
            if self._before is None:
                self._before = torch.empty_like(value)
            self._before.copy_(value)
            return
        if self.rows:
            self.before_norm = self._norms(value)
        if source != SGD_GRADIENT:
            return
        # dp = -lr * (g + weight_decay * p), g = -grad under maximize; the same float32
        # terms as sgd.py's, up to the sign, which is exact.
        # SGD_GRADIENT comes from an SGD group, for a parameter with a gradient.
        assert group is not None and self.param.grad is not None
        grad, decay = self.param.grad, group["weight_decay"]
        if self.rows:
            if decay != 0:
                grad = (grad.neg() if group["maximize"] else grad).add(value, alpha=decay)
            self._per_lr = self._norms(grad)
        else:
            per_lr = grad.clone() if group["maximize"] else grad.neg()
            self._per_lr = per_lr.add_(value, alpha=-decay) if decay != 0 else per_lr

    def after_step(self, state: dict) -> torch.Tensor:
        """(n_units,): ||dp_j|| (rows) or dp_j; for rows, also sets ``before_norm``."""
        value = self.param
        if self.source == COPY:
            before = self._before
            assert before is not None  # before_step copied the parameter
            if not self.rows:
                return value - before
            self.before_norm = self._norms(before)
            return self._norms(before.sub_(value))  # -dp, in the buffer
        if self.source == NOT_UPDATED:
            return value.new_zeros(value.shape[0])
        assert self._group is not None  # before_step was given the group
        lr = float(self._group["lr"])
        if self.source == SGD_GRADIENT:
            assert self._per_lr is not None  # before_step measured it
            return self._per_lr * lr
        momentum_buffer = state[self.param]["momentum_buffer"]  # what the step applied, / -lr
        if self.rows:
            return self._norms(momentum_buffer) * lr
        return momentum_buffer * -lr


class _ProducerUpdate:
    """One producer's update statistics after a step, as a last-firing record per unit."""

    def __init__(self, producer):
        self.producer = producer
        self.weight = _ParamUpdate(producer.weight, rows=True)
        self.bias = None if producer.bias is None else _ParamUpdate(producer.bias, rows=False)
        self._row = None  # (n_fields, n_units) float64: the record this step gives each unit
        self._row_fields = None  # views of _row made once: indexing is a call per step

    def after_step(self, state: dict, step: int, lr: float) -> torch.Tensor:
        """(n_fields, n_units) float64 on the device, in LAST_FIRING_FIELDS order.

        Per unit: the step, the lr, ||dw_j||, db_j, ||dw_j|| / ||w_j(before)||,
        and the layer's medians of ||dw||, |db| and the ratio (the upper median,
        as the native trainer's).

        Few, whole-tensor ops: on a tiny network each op's call costs more than its work.
        """
        norm = self.weight.after_step(state)
        # 0/0 is 0 (no update); x/0 is inf (a zero weight vector that moved).
        relative = torch.where(norm > 0, norm / self.weight.before_norm, 0.0)
        bias_update = (torch.zeros_like(norm) if self.bias is None
                       else self.bias.after_step(state))
        units = torch.stack([norm, bias_update, relative])
        medians = torch.kthvalue(units.abs(), norm.shape[0] // 2 + 1, dim=1).values
        if self._row is None:
            self._row = torch.empty((len(LAST_FIRING_FIELDS), norm.shape[0]),
                                    dtype=torch.float64, device=norm.device)
            self._row_fields = (self._row[0], self._row[1], self._row[2:5], self._row[5:8])
        step_field, lr_field, unit_fields, median_fields = self._row_fields
        step_field.fill_(step)
        lr_field.fill_(lr)
        unit_fields.copy_(units)
        median_fields.copy_(medians.unsqueeze(1))
        return self._row


class UpdateTracker:
    """Last-firing records of every site whose producer ``optimizer`` updates.

    ``path``: "auto" reads the update from ``torch.optim.SGD``'s own terms where
    they are exact (``update_source``) and copies otherwise; "copy" always copies.
    """

    FIELDS = ("step", "lr", "update_norm", "bias_update", "relative_update",
              "layer_median_update_norm", "layer_median_bias_update",
              "layer_median_relative_update")

    def __init__(self, optimizer: torch.optim.Optimizer, registry: SiteRegistry,
                 firing: TrainingFiring, path: str = "auto", module: torch.nn.Module | None = None):
        if LAST_FIRING_FIELDS != self.FIELDS:
            raise RuntimeError(f"last-firing fields are now {LAST_FIRING_FIELDS}; update "
                               "_ProducerUpdate.after_step")
        if path not in UPDATE_PATHS:
            raise ValueError(f"update_path must be one of {UPDATE_PATHS}, got {path!r}")
        self.optimizer = optimizer
        self.registry = registry
        self.firing = firing
        self.path = path
        self.module = module  # where producers are looked for before any site is known
        self._speculative = False  # producers prepared before their sites were found
        self.steps = 0
        self._producers: dict = {}  # producer module -> _ProducerUpdate (None: not optimized)
        self._groups: dict[int, dict] = {}  # id(param) -> its param group (lr read per step)
        self._records: dict[int, torch.Tensor] = {}  # site index -> (n_fields, n_units) float64
        self._optimized: list = []  # per param group, the ids of its params when last looked
        self._handles = [optimizer.register_step_pre_hook(self._before_step),
                         optimizer.register_step_post_hook(self._after_step)]

    @torch.no_grad()
    def _before_step(self, optimizer, args, kwargs) -> None:
        # A few hundred ids per step: cheaper than one step's tensor ops. On a change, every
        # producer is looked up again (a new group may hold one cached as not optimized).
        optimized = [[id(p) for p in group["params"]] for group in self.optimizer.param_groups]
        if optimized != self._optimized:
            self._optimized = optimized
            self._producers.clear()
            self._groups = {id(p): group for group in self.optimizer.param_groups
                            for p in group["params"]}
        closure = args[1] if len(args) > 1 else kwargs.get("closure")  # args[0]: the optimizer
        producers = [site.producer for site in self.registry.sites]
        if not producers and closure is not None and self.steps == 0 and self.module is not None:
            # The closure's forward pass (Lightning's automatic optimization) finds the
            # sites only after this hook: so that the first step has its records,
            # prepare every module that could be a site's producer, and after the step
            # keep those that turned out to be.
            producers = [m for m in self.module.modules() if isinstance(m, PRODUCERS)]
            self._speculative = True
        for producer in producers:
            if producer not in self._producers:
                self._producers[producer] = (None if id(producer.weight) not in self._groups
                                             else _ProducerUpdate(producer))
        group_sources = _group_sources(optimizer, closure, self.path)
        for update in self._producers.values():
            if update is None:
                continue
            for param_update in (update.weight, update.bias):
                if param_update is None:
                    continue
                group = self._groups.get(id(param_update.param))
                param_update.before_step(_source(group_sources, group, param_update.param),
                                         group)

    @torch.no_grad()
    def _after_step(self, optimizer, args, kwargs) -> None:
        self.steps += 1
        state = self.optimizer.state
        rows = {producer: update.after_step(state, self.steps,
                                            float(self._groups[id(producer.weight)]["lr"]))
                for producer, update in self._producers.items() if update is not None}
        for index, site in enumerate(self.registry.sites):
            row = rows.get(site.producer)
            fired = self.firing.fired_since_step(index)
            if row is None or fired is None:
                continue
            records = self._records.get(index)
            if records is None:
                records = self._records[index] = torch.full_like(row, torch.nan)
                records[0] = -1
            torch.where(fired, row, records, out=records)
        if self._speculative:
            found = {site.producer for site in self.registry.sites}
            self._producers = {producer: update for producer, update in self._producers.items()
                               if producer in found}
            self._speculative = False
        self.firing.mark_step()

    def sources(self) -> list[str | None]:
        """Per registered site, where the last step's update of its weights was read.

        One of SGD_GRADIENT, SGD_MOMENTUM_BUFFER, NOT_UPDATED, COPY; None for a
        site whose weights the optimizer does not hold.
        """
        sources = []
        for site in self.registry.sites:
            update = self._producers.get(site.producer)
            sources.append(None if update is None else update.weight.source)
        return sources

    def unit_stats(self) -> list[UnitStats]:
        """Per registered site, a ``UnitStats`` whose ``last_firing`` holds the records."""
        stats = []
        for index, site in enumerate(self.registry.sites):
            unit_stats = UnitStats(site.n_units)
            records = self._records.get(index)
            if records is not None:
                unit_stats.last_firing[:] = np.ascontiguousarray(
                    records.cpu().numpy().T).view(LAST_FIRING_DTYPE).reshape(site.n_units)
            stats.append(unit_stats)
        return stats

    def remove(self) -> None:
        """Remove the hooks from the optimizer."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
