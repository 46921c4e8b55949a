"""PyTorch Lightning: tiny real modules and trainers on synthetic data; values checked, not just presence."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")

import autolog  # noqa: E402
from autolog.backends import open_backend  # noqa: E402
from autolog.backends.memory import MemoryBackend  # noqa: E402
from autolog.integrations import lightning as al  # noqa: E402


class Module(L.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.1, fail_at: int = -1, interrupt_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
        self.seen: list[tuple[int, float]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.global_step == self.hparams.fail_at:
            raise ValueError("boom")
        if self.global_step == self.hparams.interrupt_at:
            raise KeyboardInterrupt
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss)
        self.seen.append((self.global_step, loss.item()))  # the test's own record, to compare with
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self(x), y))

    def test_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        self.log("test_loss", torch.nn.functional.cross_entropy(self(x), y))

    def configure_optimizers(self) -> Any:
        opt = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.5)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)}


class Data(L.LightningDataModule):
    def __init__(self, batch_size: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        gen = torch.Generator().manual_seed(0)
        self.ds = torch.utils.data.TensorDataset(
            torch.randn(48, 4, generator=gen), torch.randint(0, 2, (48,), generator=gen)
        )

    def train_dataloader(self) -> Any:
        return torch.utils.data.DataLoader(self.ds, batch_size=self.hparams.batch_size)

    def val_dataloader(self) -> Any:
        return torch.utils.data.DataLoader(self.ds, batch_size=self.hparams.batch_size)

    test_dataloader = val_dataloader


def trainer(root: Path, **kwargs: Any) -> L.Trainer:
    settings: dict[str, Any] = {
        "max_epochs": 2,
        "log_every_n_steps": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
        "devices": 1,
        "default_root_dir": str(root),
        "logger": False,
    }
    settings.update(kwargs)
    return L.Trainer(**settings)


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(step, value) for step, value, _ in autolog.get_metric_history(run_id, key)]


def test_fit_logs_params_every_self_log_value_lr_and_a_reloadable_model(tmp_path: Path) -> None:
    backend = MemoryBackend("memory:fit")
    autolog.enable(backend=backend, sync=True, log_checkpoints=True)
    torch.manual_seed(0)
    model = Module()
    user_logger = L.loggers.CSVLogger(str(tmp_path / "csv"), name="", version="")
    checkpoint = L.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=1)
    stopper = L.callbacks.EarlyStopping(monitor="val_loss", patience=5)
    callbacks = [checkpoint, stopper]
    t = trainer(tmp_path, logger=user_logger, callbacks=callbacks)
    callbacks_before, loggers_before = list(t.callbacks), list(t.loggers)
    t.fit(model, datamodule=Data())

    assert t.callbacks == callbacks_before and t.loggers == loggers_before  # ours were only there for the fit
    assert callbacks == [checkpoint, stopper]
    (run,) = autolog.search_runs()
    assert run.status == "FINISHED" and run.name == "Module"
    assert run.tags["autolog.integration"] == "lightning"
    # self.log values, at Lightning's steps, equal to what the module computed
    logged = history(run.id, "train_loss")
    assert [s for s, _ in logged] == [s for s, _ in model.seen] == list(range(6))
    assert [v for _, v in logged] == pytest.approx([v for _, v in model.seen], rel=1e-6)
    assert [s for s, _ in history(run.id, "val_loss")] == [2, 5]
    # the user's own logger got the same values
    with (tmp_path / "csv" / "metrics.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("train_loss")]
    assert len(rows) == 6
    # lr per step from the scheduler (StepLR steps per epoch: 3 batches per epoch)
    assert history(run.id, "lr-SGD") == [(0, 0.1), (1, 0.1), (2, 0.1), (3, 0.05), (4, 0.05), (5, 0.05)]
    p = run.params
    assert (p["hidden"], p["lr"], p["batch_size"]) == ("8", "0.1", "16")  # module and datamodule hparams
    assert p["datamodule.batch_size"] == "16"
    assert (p["trainer.max_epochs"], p["trainer.accumulate_grad_batches"], p["trainer.precision"]) == (
        "2",
        "1",
        "32-true",
    )
    assert (p["optimizer"], p["optimizer.lr"], p["optimizer.momentum"], p["lr_scheduler"]) == (
        "SGD",
        "0.1",
        "0.5",
        "StepLR",
    )
    assert p["model_parameters"] == str(sum(x.numel() for x in model.parameters())) == "58"
    assert p["early_stopping.monitor"] == "val_loss" and p["early_stopping.patience"] == "5"
    assert run.metrics["early_stopping.stopped_epoch"] == 0.0
    assert run.metrics["early_stopping.best_score"] == pytest.approx(float(stopper.best_score))
    assert p["checkpoint.best_model_path"] == checkpoint.best_model_path
    assert Path(checkpoint.best_model_path).parent == tmp_path / "csv" / "checkpoints"  # the user's logger's dir
    assert run.metrics["checkpoint.best_model_score"] == pytest.approx(float(checkpoint.best_model_score))
    files = backend.list_artifacts(run.id)
    assert f"checkpoints/{Path(checkpoint.best_model_path).name}" in files
    assert "model_summary.txt" in files
    loaded = autolog.load_model(run.id)
    assert type(loaded) is Module and loaded.hparams.hidden == 8
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_without_user_loggers_checkpoints_stay_where_lightning_puts_them(tmp_path: Path) -> None:
    autolog.enable(backend="memory:", sync=True)
    extra = L.Callback()

    class WithCallbacks(Module):
        def configure_callbacks(self) -> Any:
            return [extra]

    t = trainer(tmp_path, max_epochs=1)
    t.fit(WithCallbacks(), datamodule=Data())
    assert Path(t.checkpoint_callback.best_model_path).parent == tmp_path / "checkpoints"
    assert t.loggers == []
    assert extra in t.callbacks  # what Lightning added during the fit stays; only ours went
    assert not any(type(cb).__module__.startswith("autolog") for cb in t.callbacks)
    from autolog import session

    run = autolog.search_runs()[0]
    files = session.backend().list_artifacts(run.id)
    assert run.params["checkpoint.best_model_path"] == t.checkpoint_callback.best_model_path
    assert not any(f.startswith("checkpoints/") for f in files)  # log_checkpoints is off by default
    assert "model" in files
    assert len(history(autolog.search_runs()[0].id, "train_loss")) == 3


def test_plain_torch_stands_down_under_lightning(memory_store: MemoryBackend, tmp_path: Path) -> None:
    trainer(tmp_path, max_epochs=1).fit(Module(), datamodule=Data())
    (run,) = autolog.search_runs()
    assert run.tags["autolog.integration"] == "lightning"
    assert "loss" not in run.metrics and "optimizer.dampening" in run.params  # not the torch integration's keys
    assert autolog.active_run() is None  # no ambient plain-torch run was opened


def test_fit_then_test_in_a_user_run_share_it(memory_store: MemoryBackend, tmp_path: Path) -> None:
    model = Module()
    t = trainer(tmp_path, max_epochs=1)
    with autolog.start_run("mine") as run:
        t.fit(model, datamodule=Data())
        t.test(model, datamodule=Data())
        assert memory_store.runs[run.id].status == "RUNNING"
    (stored,) = autolog.search_runs()
    assert stored.status == "FINISHED"
    assert "train_loss" in stored.metrics and "test_loss" in stored.metrics


class TwoOptimizers(L.LightningModule):
    """Manual optimization with two optimizers stepping each batch (a GAN's shape): ``global_step`` counts both."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.a, self.b = torch.nn.Linear(4, 2), torch.nn.Linear(4, 2)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        for net, opt in zip((self.a, self.b), self.optimizers(), strict=True):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        self.log("b_loss", loss)

    def configure_optimizers(self) -> Any:
        return [torch.optim.SGD(self.a.parameters(), lr=0.1), torch.optim.Adam(self.b.parameters(), lr=0.01)]


def test_manual_optimization_logs_learning_rates_at_the_steps_of_self_log(
    memory_store: MemoryBackend, tmp_path: Path
) -> None:
    t = trainer(tmp_path)
    t.fit(TwoOptimizers(), datamodule=Data())
    assert t.global_step == 12  # 3 batches x 2 epochs x 2 optimizers
    (run,) = autolog.search_runs()
    assert [s for s, _ in history(run.id, "b_loss")] == list(range(6))
    assert history(run.id, "lr-SGD") == [(s, 0.1) for s in range(6)]
    assert history(run.id, "lr-Adam") == [(s, 0.01) for s in range(6)]


def test_the_users_learning_rate_monitor_is_not_doubled(memory_store: MemoryBackend, tmp_path: Path) -> None:
    user_logger = L.loggers.CSVLogger(str(tmp_path / "csv"), name="", version="")
    monitor = L.callbacks.LearningRateMonitor(logging_interval="step")
    trainer(tmp_path, logger=user_logger, callbacks=[monitor]).fit(Module(), datamodule=Data())
    (run,) = autolog.search_runs()
    with (tmp_path / "csv" / "metrics.csv").open() as fh:
        rows = [(int(r["step"]), float(r["lr-SGD"])) for r in csv.DictReader(fh) if r.get("lr-SGD")]
    assert len(rows) == 6
    assert history(run.id, "lr-SGD") == rows  # the monitor's values, once each, as the user's logger got them


class HookRecorder(L.profilers.PassThroughProfiler):
    """Lightning's profiler sees each callback hook it calls (``[Callback]<state key>.<hook>``): the test's record."""

    def __init__(self) -> None:
        super().__init__()
        self.actions: list[str] = []

    def start(self, action_name: str) -> None:
        self.actions.append(action_name)


class ListensAfterBackward(L.Callback):
    def __init__(self) -> None:
        self.calls = 0

    def on_after_backward(self, trainer: Any, pl_module: Any) -> None:
        self.calls += 1


def test_lightning_calls_none_of_our_callbacks_unused_per_batch_hooks(
    memory_store: MemoryBackend, tmp_path: Path
) -> None:
    """Each hook Lightning calls on a callback costs a profiler context: ours get only the hooks they use."""
    profiler = HookRecorder()
    user = ListensAfterBackward()
    trainer(tmp_path, max_epochs=1, profiler=profiler, callbacks=[user]).fit(Module(), datamodule=Data())
    ours = [a for a in profiler.actions if a.startswith("[Callback]AutologCallback")]
    assert sorted({a.rsplit(".", 1)[1] for a in ours} & set(al.UNUSED_BATCH_HOOKS)) == []
    assert ours.count("[Callback]AutologCallback.on_train_batch_start") == 3  # the one it uses, each batch
    assert user.calls == 3  # the user's callback gets the same hook, as always
    (run,) = autolog.search_runs()
    assert [s for s, _ in history(run.id, "lr-SGD")] == [0, 1, 2]


def test_a_subclass_of_our_callback_keeps_the_hooks_it_defines(tmp_path: Path) -> None:
    calls: list[str] = []

    class Mine(al.AutologCallback):  # type: ignore[misc, valid-type]
        def on_train_batch_end(self, *args: Any) -> None:
            super().on_train_batch_end(*args)  # the base class's no-op, still there
            calls.append("end")

    autolog.enable(backend="memory:subclass", sync=True)
    autolog.disable()
    mine = Mine()
    assert mine.on_after_backward is None and mine.on_train_batch_end is not None
    trainer(tmp_path, max_epochs=1, callbacks=[mine]).fit(Module(), datamodule=Data())
    assert calls == ["end"] * 3


class SwapsOptimizer(L.Callback):
    """Replaces the trainer's optimizer after the first epoch: the learning rates logged are the new one's."""

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch == 1:
            trainer.optimizers = [torch.optim.Adam(pl_module.parameters(), lr=0.003)]


def test_learning_rates_follow_an_optimizer_replaced_during_the_fit(
    memory_store: MemoryBackend, tmp_path: Path
) -> None:
    trainer(tmp_path, callbacks=[SwapsOptimizer()]).fit(Module(), datamodule=Data())
    (run,) = autolog.search_runs()
    assert history(run.id, "lr-SGD") == [(0, 0.1), (1, 0.1), (2, 0.1)]
    assert history(run.id, "lr-Adam") == [(3, 0.003), (4, 0.003), (5, 0.003)]


def test_a_fit_after_a_plain_torch_loop_is_a_run_of_its_own(memory_store: MemoryBackend, tmp_path: Path) -> None:
    """The plain loop's run spans the script (ambient); a Lightning fit after it is its own run, as without the loop."""
    net = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.ones(8, 4)), torch.zeros(8, dtype=torch.long)).backward()
        opt.step()
    trainer(tmp_path, max_epochs=1).fit(Module(), datamodule=Data())
    autolog.end_run()
    by_integration = {r.tags.get("autolog.integration"): r for r in autolog.search_runs()}
    assert sorted(by_integration) == ["lightning", "torch"]
    assert by_integration["lightning"].name == "Module" and "train_loss" not in by_integration["torch"].metrics
    assert [s for s, _ in history(by_integration["torch"].id, "loss")] == [0, 1, 2]


def test_test_after_fit_logs_into_the_fits_run(memory_store: MemoryBackend, tmp_path: Path) -> None:
    model = Module()
    trainer(tmp_path, max_epochs=1).fit(model, datamodule=Data())
    other = Module()
    trainer(tmp_path).test(other, datamodule=Data())  # never fitted: a run of its own
    # another trainer, as people test on one device: its settings differ from the fit's and are not logged again
    results = trainer(tmp_path, max_epochs=7).test(model, datamodule=Data())
    trainer(tmp_path).validate(model, datamodule=Data())
    fit_run, test_run = sorted(autolog.search_runs(), key=lambda r: r.name)
    assert (fit_run.name, fit_run.status, test_run.name) == ("Module", "FINISHED", "Module-test")
    assert fit_run.metrics["test_loss"] == pytest.approx(results[0]["test_loss"], rel=1e-6)
    assert fit_run.metrics["test_loss"] != test_run.metrics["test_loss"]  # each module's own value
    assert len(history(fit_run.id, "val_loss")) == 2  # the fit's validation, then validate's
    assert fit_run.params["trainer.max_epochs"] == "1"
    assert "train_loss" in fit_run.metrics and "train_loss" not in test_run.metrics


def test_test_after_a_fit_in_a_user_run_logs_into_that_run(memory_store: MemoryBackend, tmp_path: Path) -> None:
    model = Module()
    with autolog.start_run("mine") as run:
        trainer(tmp_path, max_epochs=1).fit(model, datamodule=Data())
    trainer(tmp_path).test(model, datamodule=Data())
    (stored,) = autolog.search_runs()
    assert stored.id == run.id and stored.status == "FINISHED"
    assert "test_loss" in stored.metrics


def test_validate_alone_opens_its_own_run(memory_store: MemoryBackend, tmp_path: Path) -> None:
    trainer(tmp_path).validate(Module(), datamodule=Data())
    (run,) = autolog.search_runs()
    assert run.status == "FINISHED" and run.name == "Module-validate"  # named after the module, as fit's runs
    assert sorted(run.metrics) == ["epoch", "val_loss"]  # Lightning adds the epoch


def test_a_user_exception_propagates_unchanged_and_the_run_fails(memory_store: MemoryBackend, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="boom") as info:
        trainer(tmp_path).fit(Module(fail_at=2), datamodule=Data())
    assert type(info.value) is ValueError
    (run,) = autolog.search_runs()
    assert run.status == "FAILED"
    assert [s for s, _ in history(run.id, "train_loss")] == [0, 1]


def test_keyboard_interrupt_ends_the_run_killed(memory_store: MemoryBackend, tmp_path: Path) -> None:
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1)
            trainer(tmp_path).fit(Module(interrupt_at=1), datamodule=Data())
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT after an interrupt
    (run,) = autolog.search_runs()
    assert run.status == "KILLED"


def test_logger_save_never_flushes_or_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autolog.writer import Writer

    backend = MemoryBackend("memory:async")
    autolog.enable(backend=backend, flush_interval=0.01)
    flushes: list[int] = []
    original = Writer.flush
    monkeypatch.setattr(Writer, "flush", lambda self, timeout=None: flushes.append(1) or original(self, timeout))

    class Probe(L.Callback):
        saves = 0

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            self.during = len(flushes)

    probe = Probe()
    trainer(tmp_path, callbacks=[probe]).fit(Module(), datamodule=Data())
    assert probe.during == 0  # six log_metrics + save() calls, no flush
    assert len(flushes) >= 1  # the end of the run waits for the store
    run_id = next(iter(backend.runs))
    assert len(backend.history[(run_id, "train_loss")]) == 6


def test_explicit_logger_and_callback_without_enable(tmp_path: Path) -> None:
    autolog.enable(backend="memory:explicit", sync=True)
    autolog.disable()  # the options stay; nothing is patched
    t = trainer(tmp_path, max_epochs=1, logger=al.AutologLogger(), callbacks=[al.AutologCallback()])
    assert isinstance(t.logger, L.loggers.Logger)
    t.fit(Module(), datamodule=Data())
    from autolog import session

    session.flush(5)
    (run,) = session.backend().search_runs()
    assert run.status == "FINISHED"
    assert [s for s, _, _ in session.backend().get_metric_history(run.id, "train_loss")] == [0, 1, 2]
    assert run.params["optimizer"] == "SGD" and run.params["hidden"] == "8"
    assert "model" in session.backend().list_artifacts(run.id)
    from autolog.integrations import torch as plain

    assert plain._loop.stand_down == 0  # the plain-torch integration is back once the fit is over


SPAWN_SCRIPT = """
    import json, os, sys, torch, autolog
    import lightning.pytorch as L
    from autolog.backends.memory import MemoryBackend
    {enable_at_top}

    class M(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(4, 2)
        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            with open(os.path.join("{root}", f"losses-{{self.global_rank}}.jsonl"), "a") as fh:
                fh.write(json.dumps([self.global_step, loss.item()]) + "\\n")  # what the worker computed
            return loss
        def test_step(self, batch, i):
            x, y = batch
            self.log("test_loss", torch.nn.functional.cross_entropy(self.net(x), y))
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    if __name__ == "__main__":
        {enable_in_main}
        torch.manual_seed(0)
        ds = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
        loader = torch.utils.data.DataLoader(ds, batch_size=8)
        trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=2, strategy="{strategy}", logger=False,
                            enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
                            enable_checkpointing=False, default_root_dir="{root}")
        model = M()
        trainer.fit(model, loader)
        if {test_after}:
            trainer.test(model, loader, verbose=False)  # into the fit's run, also when the test is spawned anew
        if trainer.global_rank == 0:  # under "ddp" every rank runs this script
            store = autolog.session.backend()
            autolog.flush(10)
            runs = [[r.status, store.get_metric_history(r.id, "train_loss")] for r in store.search_runs()]
            print("RUNS", json.dumps(runs))
"""


def _spawn_fit(
    tmp_path: Path, enable: str, *, in_main: bool, strategy: str = "ddp_spawn", test_after: bool = False
) -> tuple[subprocess.CompletedProcess[str], Any]:
    script = tmp_path / "spawn.py"
    top, main = ("", enable) if in_main else (enable, "")
    fields = {"enable_at_top": top, "enable_in_main": main, "root": tmp_path, "strategy": strategy}
    fields["test_after"] = test_after
    text = textwrap.dedent(SPAWN_SCRIPT).format(**fields)
    script.write_text(text, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RUNS ")]
    return proc, json.loads(line[5:])


def _worker_losses(tmp_path: Path, rank: int) -> list[tuple[int, float]]:
    lines = (tmp_path / f"losses-{rank}.jsonl").read_text(encoding="utf-8").splitlines()
    return [(int(step), float(loss)) for step, loss in map(json.loads, lines)]


@pytest.mark.parametrize(
    ("strategy", "in_main", "store"),
    [
        ("ddp", False, "sqlite"),
        ("ddp_spawn", False, "sqlite"),
        ("ddp_spawn", True, "jsonl"),
        ("ddp_fork", False, "sqlite"),
    ],
    ids=["ddp", "spawn-enable-at-top", "spawn-enable-under-main", "fork"],
)
def test_ddp_workers_log_rank_zero_values_into_one_run(
    tmp_path: Path, strategy: str, in_main: bool, store: str
) -> None:
    _ddp_one_run(tmp_path, strategy, in_main, store, test_after=False)


def test_a_spawned_test_after_a_spawned_fit_logs_into_the_fits_run(tmp_path: Path) -> None:
    """The fit's workers set up in other processes: the parent remembers the module's run itself, so the test's own
    spawn logs ``test_loss`` into it (it opened a second run before)."""
    reader, run = _ddp_one_run(tmp_path, "ddp_spawn", False, "sqlite", test_after=True)
    assert len(reader.get_metric_history(run.id, "test_loss")) == 1  # at the step Lightning gives (0 or 4, by run)


def _ddp_one_run(tmp_path: Path, strategy: str, in_main: bool, store: str, *, test_after: bool) -> tuple[Any, Any]:
    """Lightning's DDP strategies, one run each, with rank 0's values. "ddp": the script runs once per rank and
    only rank 0 writes. "ddp_spawn": the parent's run receives rank 0's values, step by step, and the model; no
    worker opens a run of its own (before, rank 0 opened a second run). Under the main guard the workers never call
    enable(): they log with the parent's settings, into the same store. "ddp_fork": the forked rank 0's records
    reach the store before the fit returns (before, they waited in its spool for the next `autolog sync`), and rank 1
    logs nothing (before, a sync added its values under the same steps)."""
    uri = f"jsonl:{tmp_path / 'runs'}" if store == "jsonl" else f"sqlite:///{tmp_path / 'runs.db'}"
    enable = f'autolog.enable(backend="{uri}")'
    proc, seen = _spawn_fit(tmp_path, enable, in_main=in_main, strategy=strategy, test_after=test_after)
    sync = subprocess.run(
        [sys.executable, "-m", "autolog", "sync", "--backend", uri],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert sync.returncode == 0, sync.stderr
    reader = open_backend(uri)
    (run,) = reader.search_runs()
    assert run.status == "FINISHED"
    logged = [(step, value) for step, value, _ in reader.get_metric_history(run.id, "train_loss")]
    assert logged == _worker_losses(tmp_path, 0)  # rank 0's four steps, once, in order
    assert len(logged) == 4 and _worker_losses(tmp_path, 1) != _worker_losses(tmp_path, 0)
    assert seen == [["FINISHED", [list(row) for row in reader.get_metric_history(run.id, "train_loss")]]]
    assert run.params["trainer.max_epochs"] == "1" and run.params["trainer.world_size"] == "2"
    assert run.params["optimizer"] == "SGD" and run.params["model_class"] == "__main__:M"  # not __mp_main__
    assert "model" in reader.list_artifacts(run.id)
    # no warning of ours (each says "autolog: ..."); not "autolog" alone, which a checkout's path may hold
    assert "AutologWarning" not in proc.stderr and "autolog:" not in proc.stderr
    return reader, run


def test_ddp_spawn_with_a_store_in_memory_warns_and_keeps_one_run(tmp_path: Path) -> None:
    """A store that is an object in the parent's memory cannot be reached by spawned workers: they log nothing,
    say so, and open no run of their own; the parent's run still starts and ends."""
    proc, runs = _spawn_fit(tmp_path, "autolog.enable(backend=MemoryBackend())", in_main=True)
    assert runs == [["FINISHED", []]]
    assert "cannot write into a store that is an object in the parent's memory" in proc.stderr
