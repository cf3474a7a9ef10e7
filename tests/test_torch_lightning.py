"""The monitor as a Lightning callback: one fit, scanned every epoch, hooks gone after."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

# Lightning's own notices (no GPU, few dataloader workers, deprecations in
# its dependencies) are not what these tests are about.
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]


def lightning_parts():
    import lightning.pytorch as pl

    from reluscope.torch.lightning import DeadUnitCallback

    class Classifier(pl.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Sequential(torch.nn.Linear(5, 12), torch.nn.ReLU(),
                                           torch.nn.Linear(12, 3))
            with torch.no_grad():
                self.net[0].bias[[2, 7]] = -50.0  # two units dead from the start

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.cross_entropy(self(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return pl, DeadUnitCallback, Classifier


def test_the_callback_scans_every_epoch_and_records_the_steps():
    pl, DeadUnitCallback, Classifier = lightning_parts()
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(96, 5, generator=generator)
    y = torch.randint(0, 3, (96,), generator=generator)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    module = Classifier()
    callback = DeadUnitCallback(x_scan=x)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, callbacks=[callback],
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(module, loader)
    monitor = callback.monitor
    assert monitor.history.epochs == [0, 1, 2, 3]
    assert monitor.history.steps[-1] == 9  # 3 epochs of 3 batches, counted by the hooks
    np.testing.assert_array_equal(monitor.history.reports[-1].layers[0].dead_units, [2, 7])
    # Every hook is gone: a training forward after the fit is not counted.
    module.train()
    module(x)
    assert all(counts is None for counts in monitor.epoch_firing_counts())
