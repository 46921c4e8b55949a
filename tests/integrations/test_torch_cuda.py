"""On a CUDA device (skipped elsewhere, CI has none): autolog adds no host-device synchronisation to the training
thread of a plain loop, checked by CUDA itself with ``torch.cuda.set_sync_debug_mode("error")``, which raises on any
synchronising call; and Lightning on the GPU logs with autolog on.

Run on a GPU machine: ``python -m pytest tests/integrations/test_torch_cuda.py``."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

import autolog  # noqa: E402
from autolog.backends.memory import MemoryBackend  # noqa: E402


def _loop(steps: int = 60, hand_written: bool = False) -> list[torch.Tensor]:
    """A plain loop with every tensor on the GPU (batches sliced there: a pageable host copy would sync); the loss a
    ``torch.nn`` loss module's, or written by hand (autolog then logs the scalar ``backward()`` was called on)."""
    torch.manual_seed(0)
    dev = torch.device("cuda")
    xs, ys = torch.randn(steps * 32, 16, device=dev), torch.randint(0, 2, (steps * 32,), device=dev)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(steps):
            x, y = xs[i * 32 : (i + 1) * 32], ys[i * 32 : (i + 1) * 32]
            opt.zero_grad()
            out = model(x)
            loss = (out.logsumexp(1) - out.gather(1, y[:, None])[:, 0]).mean() if hand_written else loss_fn(out, y)
            loss.backward()
            opt.step()
            losses.append(loss.detach().clone())
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return losses


@pytest.mark.parametrize("hand_written", [False, True], ids=["nn_loss", "hand_written_loss"])
def test_the_plain_loop_itself_does_not_sync(hand_written: bool) -> None:
    """The control: without autolog the loop runs under the "error" mode, so the next test can fail only by us."""
    assert len(_loop(5, hand_written)) == 5
    with pytest.raises(RuntimeError, match="synchroniz"):  # and the mode does catch a sync
        torch.cuda.set_sync_debug_mode("error")
        try:
            torch.ones(1, device="cuda").item()
        finally:
            torch.cuda.set_sync_debug_mode(0)


@pytest.mark.parametrize("hand_written", [False, True], ids=["nn_loss", "hand_written_loss"])
def test_autolog_adds_no_sync_to_the_training_thread_and_logs_every_loss(hand_written: bool) -> None:
    backend = MemoryBackend("memory:cuda")
    # the writer stays idle during the loop (the debug mode is process-wide, and the writer is meant to sync)
    autolog.enable(backend=backend, flush_interval=60, batch_size=100_000)
    losses = _loop(60, hand_written)  # raises RuntimeError at the first synchronising call made while the loop runs
    autolog.end_run()
    assert autolog.flush(60)
    run = autolog.search_runs()[0]
    logged = autolog.get_metric_history(run.id, "loss")
    assert [s for s, _, _ in logged] == list(range(60))
    assert [v for _, v, _ in logged] == [t.item() for t in losses]
    assert [v for _, v, _ in autolog.get_metric_history(run.id, "lr")] == [0.1] * 60
    assert autolog.load_model(run.id) is not None


def test_lightning_on_the_gpu_logs_each_step() -> None:
    pl = pytest.importorskip("lightning.pytorch")

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Linear(8, 2)

        def training_step(self, batch, _):  # type: ignore[no-untyped-def]
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):  # type: ignore[no-untyped-def]
            return torch.optim.SGD(self.parameters(), lr=0.1)

    backend = MemoryBackend("memory:cuda-lightning")
    autolog.enable(backend=backend)
    data = torch.utils.data.TensorDataset(torch.randn(256, 8), torch.randint(0, 2, (256,)))
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=1,
        logger=False,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(Module(), torch.utils.data.DataLoader(data, batch_size=32))
    assert autolog.flush(60)
    runs = autolog.search_runs()
    assert len(runs) == 1
    steps = [s for s, _, _ in autolog.get_metric_history(runs[0].id, "train_loss")]
    assert steps == list(range(8))
