"""ReDo: recycle dormant units during training (Sokar et al., ICML 2023).

"The Dormant Neuron Phenomenon in Deep Reinforcement Learning", Sokar, Agarwal,
Castro & Evci, ICML 2023. Every ``every`` steps the dormant units of each
hidden layer (ReDo score <= tau on a sample of the training inputs, see
``reluscope.scan``) are recycled:

- their incoming weights are drawn afresh from the model's initializer,
- their bias is set to zero,
- their outgoing weights are set to zero, so that their fresh activity does
  not reach the output (the network loses only the dormant units' small
  contribution, nothing for dead units),
- the optimizer state of all three is reset element by element (SGD momentum;
  Adam's moments and, through moment cohorts, its step count).

Units recycled at one check are scored again at the next one (and at the end of
training): ``events`` says how many of them stayed alive (not dormant).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._rng_state import generator_from_state, generator_state
from ._validation import finite_float, generator, positive_int
from .callbacks import Callback, CallbackState
from .initializers import get_initializer, initialize
from .scan import DEFAULT_DORMANT_TAU, scan

if TYPE_CHECKING:
    from ._typing import Init, Seed
    from .trainer import Trainer


class ReDo(Callback):
    """Training callback that recycles dormant units every ``every`` steps.

    Parameters
    ----------
    tau : float
        Dormancy threshold on the ReDo score (default 0.025, the paper's value
        for the dormant-neuron plots).
    every : int
        Steps between two checks.
    sample_size : int, keyword-only (as are the arguments below)
        Training rows drawn (without replacement) to score the units at each check.
    init, init_params :
        Initializer of the fresh incoming weights; default: the model's own
        (``MLP.init``), or ``he_normal`` for a model built from weights
        (``weights=``, ``MLP.from_weights``, ``MLP.from_layers``).
    seed : int or None
        Seed of the generator that draws the sample and the fresh weights.

    Attributes
    ----------
    events : list of dict
        One per (check, layer) with recycled units: ``step``, ``layer``,
        ``units`` (indices), and ``stayed_alive``: how many of them were not
        dormant at the next check (None until then).
    """

    def __init__(self, tau: float = DEFAULT_DORMANT_TAU, every: int = 1000, *,
                 sample_size: int = 256, init: Init | None = None,
                 init_params: dict | None = None, seed: Seed = None) -> None:
        self.tau = finite_float(tau, "tau", low=0.0)
        self.every = positive_int(every, "every")
        self.sample_size = positive_int(sample_size, "sample_size")
        if init is not None:
            get_initializer(init)  # an unknown name fails here, not at the first recycling
        self.init, self.init_params = init, init_params
        self.rng = generator(seed)
        self.events: list[dict] = []
        self._open: list[dict] = []  # events whose units have not been scored again yet

    @property
    def recycled(self) -> int:
        """Units recycled so far (a unit recycled twice counts twice)."""
        return sum(len(event["units"]) for event in self.events)

    @property
    def stayed_alive(self) -> int:
        """Recycled units found not dormant at the check after their recycling."""
        return sum(event["stayed_alive"] or 0 for event in self.events)

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        """Recycle the dormant units every ``every`` steps."""
        if step % self.every == 0:
            self.check(trainer, step)

    def on_train_end(self, trainer: Trainer) -> None:
        """Score the recyclings still open: how many of their units stayed alive."""
        if self._open and trainer.fit_inputs is not None:
            self._score_open(self._dormant(trainer))

    def check(self, trainer: Trainer, step: int) -> int:
        """Score the units now and recycle the dormant ones; returns how many."""
        dormant = self._dormant(trainer)
        self._score_open(dormant)
        recycled = 0
        for layer_index, units in enumerate(dormant):
            if len(units):
                self._renew_incoming(trainer, layer_index, units)
                event = {"step": int(step), "layer": layer_index,
                         "units": [int(u) for u in units], "stayed_alive": None}
                self.events.append(event)
                self._open.append(event)
                recycled += len(units)
        # Outgoing weights last: where a recycled unit feeds a recycled unit the
        # weight ends at zero, so no fresh activity reaches the output.
        for layer_index, units in enumerate(dormant):
            if len(units):
                trainer.model.layers[layer_index + 1].weight[units, :] = 0.0
                trainer.optimizer.reset_elements(2 * layer_index + 2, (units, slice(None)))
        return recycled

    def state_dict(self) -> CallbackState:
        """Save the settings, generator, events and which events await their next scoring.

        A callable ``init`` cannot be saved (a file never names code to run):
        give the initializer by name.
        """
        if self.init is not None and not isinstance(self.init, str):
            raise TypeError(f"ReDo(init={self.init!r}) cannot be saved in a checkpoint: give "
                            "the initializer by name")
        open_events = {id(event) for event in self._open}
        return CallbackState({
            "tau": self.tau, "every": self.every, "sample_size": self.sample_size,
            "init": self.init, "init_params": self.init_params,
            "rng": generator_state(self.rng),
            "events": [dict(event) for event in self.events],
            "open_events": [i for i, event in enumerate(self.events) if id(event) in open_events],
        })

    @classmethod
    def from_state_dict(cls, state: CallbackState) -> ReDo:
        """Return the ReDo ``state_dict`` saved, ready to go on at its next check."""
        settings = state.settings
        redo = cls(settings["tau"], settings["every"], sample_size=settings["sample_size"],
                   init=settings["init"], init_params=settings["init_params"])
        redo.rng = generator_from_state(settings["rng"])
        redo.events = [dict(event) for event in settings["events"]]
        redo._open = [redo.events[i] for i in settings["open_events"]]
        return redo

    def summary(self) -> str:
        """One line: recycled units and how many stayed alive."""
        scored = sum(len(e["units"]) for e in self.events if e["stayed_alive"] is not None)
        return (f"ReDo (tau={self.tau}, every {self.every} steps): recycled {self.recycled} "
                f"units in {len({e['step'] for e in self.events})} checks; "
                f"{self.stayed_alive} of the {scored} scored again stayed alive")

    def _dormant(self, trainer) -> list[np.ndarray]:
        x = trainer.fit_inputs
        if x is None:
            raise RuntimeError("ReDo runs inside Trainer.fit, which gives it the inputs")
        rows = self.rng.choice(x.shape[0], size=min(self.sample_size, x.shape[0]), replace=False)
        report = scan(trainer.model, x[np.sort(rows)], dormancy=True)
        return [layer.dormant_units(self.tau) for layer in report.layers]

    def _score_open(self, dormant: list[np.ndarray]) -> None:
        for event in self._open:
            still = np.isin(event["units"], dormant[event["layer"]])
            event["stayed_alive"] = int(np.count_nonzero(~still))
        self._open = []

    def _renew_incoming(self, trainer, layer_index: int, units: np.ndarray) -> None:
        model = trainer.model
        layer = model.layers[layer_index]
        init = self.init if self.init is not None else (model.init or "he_normal")
        params = self.init_params if self.init is not None else model.init_params
        fresh, _ = initialize(init, layer.fan_in, layer.fan_out, self.rng, params)
        layer.weight[:, units] = fresh[:, units]
        layer.bias[units] = 0.0
        trainer.optimizer.reset_elements(2 * layer_index, (slice(None), units))
        trainer.optimizer.reset_elements(2 * layer_index + 1, units)
