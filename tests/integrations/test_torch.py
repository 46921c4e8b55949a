"""Plain PyTorch loops: tiny real models on synthetic data, values checked step by step."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import autolog  # noqa: E402
from autolog.backends.memory import MemoryBackend  # noqa: E402


class Net(torch.nn.Module):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def make_loader(n: int = 48, batch_size: int = 16, **kwargs: object) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(n, 4, generator=gen), torch.randint(0, 2, (n,), generator=gen))
    return torch.utils.data.DataLoader(data, batch_size=batch_size, **kwargs)


def train(epochs: int = 2, functional: bool = False, loader=None, model=None, optimizer=None):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = model or Net()
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = loader or make_loader()
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            out = model(x)
            loss = torch.nn.functional.cross_entropy(out, y) if functional else loss_fn(out, y)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach().clone())
    return model, [t.item() for t in losses]


def net_and_sgd() -> tuple[Net, torch.optim.SGD]:
    """A seeded model and a plain SGD optimizer for it."""
    torch.manual_seed(0)
    model = Net()
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def only_run(backend: MemoryBackend) -> autolog.Run:
    runs = autolog.search_runs()
    assert len(runs) == 1, runs
    return runs[0]


def history(run_id: str, key: str) -> list[tuple[int, float]]:
    return [(step, value) for step, value, _ in autolog.get_metric_history(run_id, key)]


@pytest.mark.parametrize("functional", [False, True])
def test_loss_lr_epoch_and_params_are_logged_step_by_step(memory_store: MemoryBackend, functional: bool) -> None:
    model, losses = train(epochs=2, functional=functional)
    assert autolog.active_run() is not None  # open until the script ends or end_run()
    autolog.end_run()
    run = only_run(memory_store)
    assert run.status == "FINISHED"
    assert history(run.id, "loss") == list(enumerate(losses))  # 3 batches x 2 epochs, exact values
    assert history(run.id, "lr") == [(i, 0.1) for i in range(6)]
    assert history(run.id, "epoch") == [(0, 0.0), (3, 1.0)]
    assert run.params["optimizer"] == "SGD"
    assert run.params["optimizer.lr"] == "0.1"
    assert run.params["optimizer.momentum"] == "0.9"
    assert run.params["model_class"] == f"{Net.__module__}:Net"
    assert run.params["model_parameters"] == str(sum(p.numel() for p in model.parameters())) == "58"
    assert run.params["batch_size"] == "16"
    assert run.tags["autolog.integration"] == "torch"


def test_final_model_is_reloadable(memory_store: MemoryBackend) -> None:
    model, _ = train(epochs=1)
    autolog.end_run()
    loaded = autolog.load_model(only_run(memory_store).id)
    assert type(loaded) is Net
    assert loaded is not model
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2
        assert torch.equal(v1, v2)


def test_a_model_with_a_frozen_backbone_is_logged_whole_not_its_head(memory_store: MemoryBackend) -> None:
    """Transfer learning's usual recipe: the backbone's parameters frozen, the optimizer given the head's only. The
    model is the module called whose trainable parameters are the optimizer's: the whole network, not its head."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    for p in model[0].parameters():
        p.requires_grad = False
    train(epochs=1, model=model, optimizer=torch.optim.SGD(model[2].parameters(), lr=0.1))
    autolog.end_run()
    run = only_run(memory_store)
    assert run.params["model_class"] == "torch.nn.modules.container:Sequential"
    assert (run.params["model_parameters"], run.params["model_trainable_parameters"]) == ("58", "18")
    loaded = autolog.load_model(run.id)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True)
    )


def test_param_groups_and_a_second_optimizer_get_their_own_lr_keys(memory_store: MemoryBackend) -> None:
    torch.manual_seed(0)
    model = Net()
    head = torch.nn.Linear(2, 1)
    opt = torch.optim.Adam([{"params": model.body[0].parameters()}, {"params": model.body[2].parameters(), "lr": 0.01}])
    opt2 = torch.optim.SGD(head.parameters(), lr=0.5)
    for x, y in make_loader():
        out = model(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        loss2 = torch.nn.functional.mse_loss(head(out.detach()).squeeze(1), y.float())
        loss2.backward()
        opt2.step()
        opt2.zero_grad()
    autolog.end_run()
    run = only_run(memory_store)
    assert history(run.id, "lr/pg0") == [(0, 0.001), (1, 0.001), (2, 0.001)]
    assert history(run.id, "lr/pg1") == [(0, 0.01), (1, 0.01), (2, 0.01)]
    assert history(run.id, "lr_1") == [(0, 0.5), (1, 0.5), (2, 0.5)]
    assert run.params["optimizer"] == "Adam"
    assert run.params["optimizer.pg1.lr"] == "0.01"
    assert run.params["optimizer_1"] == "SGD"
    assert len(history(run.id, "loss")) == 6  # each step logs the loss computed since the previous step


def halving_lr_run(optimizer: type, lr: object) -> str:
    """Four steps with a StepLR scheduler halving the lr after each; the run's id once stored."""
    torch.manual_seed(0)
    model = Net()
    opt = optimizer(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for x, y in make_loader(n=64):
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
    autolog.end_run()
    assert autolog.flush(30)
    return autolog.search_runs()[0].id


def test_scheduler_changes_show_in_lr_and_log_every_n_steps_is_honoured() -> None:
    autolog.enable(backend=MemoryBackend("memory:n"), sync=True, log_every_n_steps=2)
    run_id = halving_lr_run(torch.optim.SGD, 1.0)
    assert history(run_id, "lr") == [(0, 1.0), (2, 0.25)]
    assert [s for s, _ in history(run_id, "loss")] == [0, 2]


def test_a_tensor_learning_rate_is_logged_as_it_was_at_each_step() -> None:
    """A tensor lr is updated in place by schedulers (``fill_``); the writer reads it later, so each step's value
    must be kept, not the tensor itself (the writer here reads only after the loop)."""
    autolog.enable(backend=MemoryBackend("memory:tensor-lr"), flush_interval=60, batch_size=100_000)
    lrs = history(halving_lr_run(torch.optim.Adam, torch.tensor(0.8)), "lr")
    assert [s for s, _ in lrs] == [0, 1, 2, 3]
    assert [v for _, v in lrs] == pytest.approx([0.8, 0.4, 0.2, 0.1], rel=1e-6)  # float32 tensor values


def test_a_user_run_is_joined_and_not_ended(memory_store: MemoryBackend) -> None:
    with autolog.start_run("mine") as run:
        train(epochs=1)
        assert autolog.active_run() is run
        assert memory_store.runs[run.id].status == "RUNNING"
    stored = only_run(memory_store)
    assert stored.name == "mine"
    assert stored.status == "FINISHED"
    assert len(history(run.id, "loss")) == 3
    assert autolog.load_model(run.id).__class__ is Net  # logged when the user's run ended


def test_after_end_run_the_next_step_opens_a_new_run(memory_store: MemoryBackend) -> None:
    train(epochs=1)
    autolog.end_run()
    train(epochs=1)
    autolog.end_run()
    runs = autolog.search_runs()
    assert len(runs) == 2
    assert all(len(history(r.id, "loss")) == 3 for r in runs)


def sweep(lrs: list[float]) -> list[tuple[Net, list[float]]]:
    """A hyper-parameter sweep as scripts and notebooks write it: each trial a new model and a new optimizer bound
    to the same names, so the trial before is freed. No end_run() between trials."""
    trials = []
    for lr in lrs:
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        trials.append(train(epochs=1, model=model, optimizer=optimizer))
        del model, optimizer
    return trials


def test_each_training_of_a_sweep_gets_its_own_run_with_its_model(memory_store: MemoryBackend) -> None:
    """Before, a second training in one process was logged into the first's run, every loss at its last step."""
    trials = sweep([0.1, 0.01, 0.001])
    autolog.end_run()
    runs = sorted(autolog.search_runs(), key=lambda r: r.start_time)
    assert [r.status for r in runs] == ["FINISHED"] * 3
    for run, (model, losses), lr in zip(runs, trials, [0.1, 0.01, 0.001], strict=True):
        assert history(run.id, "loss") == list(enumerate(losses))  # steps from 0, the trial's own values
        assert history(run.id, "lr") == [(0, lr), (1, lr), (2, lr)]
        assert history(run.id, "epoch") == [(0, 0)]  # each trial's own loader (perhaps at a freed one's address)
        assert run.params["optimizer.lr"] == str(lr) and run.params["model_class"].endswith(":Net")
        assert "optimizer_1" not in run.params
        logged = autolog.load_model(run.id).state_dict()  # the trial's final weights, not the next trial's
        assert all(torch.equal(logged[k], v) for k, v in model.state_dict().items())


def test_a_new_loader_where_a_freed_one_was_counts_its_own_epochs(
    memory_store: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep's next trial with a new DataLoader at the freed one's address (so its id): its epochs count from 0."""
    from autolog.integrations import torch as integration

    first = make_loader()
    train(epochs=2, loader=first)
    old_id = id(first)
    second = make_loader()  # made while the first lives: elsewhere in memory
    del first
    # An id reuse cannot be made certain for real: the integration's id() gives the new loader the freed one's.
    monkeypatch.setattr(integration, "id", lambda obj: old_id if obj is second else id(obj), raising=False)
    train(epochs=2, loader=second)
    autolog.end_run()
    runs = sorted(autolog.search_runs(), key=lambda r: r.start_time)
    assert [history(r.id, "epoch") for r in runs] == [[(0, 0), (3, 1)]] * 2


def test_trials_sharing_one_loader_each_count_their_epochs_from_0(memory_store: MemoryBackend) -> None:
    loader = make_loader()
    train(epochs=2, loader=loader)
    train(epochs=2, loader=loader)  # a new model and optimizer, the same DataLoader
    autolog.end_run()
    runs = sorted(autolog.search_runs(), key=lambda r: r.start_time)
    assert [history(r.id, "epoch") for r in runs] == [[(0, 0), (3, 1)]] * 2


def test_a_loss_left_by_an_aborted_training_is_not_the_next_trainings(memory_store: MemoryBackend) -> None:
    """A training stopped between a loss and its step (an exception; a notebook cell interrupted): that loss is not
    averaged into the first step of the next training, which begins with a DataLoader pass."""
    model, opt = net_and_sgd()
    with pytest.raises(RuntimeError, match="stop"):
        for i, (x, y) in enumerate(make_loader()):
            loss = torch.nn.functional.cross_entropy(model(x) * 100, y)  # far from the next training's losses
            loss.backward()
            if i == 1:
                raise RuntimeError("stop")
            opt.step()
    del model, opt  # the next trial's model and optimizer take their names, as in a notebook cell run again
    _, losses = train(epochs=1)
    autolog.end_run()
    first, second = sorted(autolog.search_runs(), key=lambda r: r.start_time)
    assert len(history(first.id, "loss")) == 1
    assert history(second.id, "loss") == list(enumerate(losses))


def test_a_sweep_inside_the_users_run_continues_its_steps(memory_store: MemoryBackend) -> None:
    """The user's run is never ended by us: the next trial continues its step count, its optimizer logged as a
    further one (a param cannot change its value within a run)."""
    with autolog.start_run("sweep") as run:
        trials = sweep([0.1, 0.01])
    assert len(autolog.search_runs()) == 1
    assert history(run.id, "loss") == list(enumerate(trials[0][1] + trials[1][1]))
    assert history(run.id, "lr") == [(s, 0.1) for s in range(3)]
    assert history(run.id, "lr_1") == [(s, 0.01) for s in range(3, 6)]
    stored = autolog.get_run(run.id)
    assert stored.params["optimizer.lr"] == "0.1" and stored.params["optimizer_1.lr"] == "0.01"


@pytest.mark.parametrize("same_id", [False, True], ids=["new-id", "freed-id-reused"])
def test_a_new_optimizer_for_the_same_model_continues_its_run(
    memory_store: MemoryBackend, monkeypatch: pytest.MonkeyPatch, same_id: bool
) -> None:
    """A fine-tune in two stages (the optimizer made anew for the same model, the first one freed) is one training:
    one run, steps counted on, the second optimizer logged as a further one. Freed first, the old optimizer's
    memory, so its id, often goes to the new one: still a new optimizer, not the old one's keys."""
    from autolog.integrations import torch as integration

    model = Net()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    _, first = train(epochs=1, model=model, optimizer=sgd)
    old_id = id(sgd)
    adam = torch.optim.Adam(model.parameters(), lr=0.01)  # made while the first lives: elsewhere in memory
    del sgd
    assert id(adam) != old_id
    if same_id:
        # Whether CPython reuses the freed block depends on every allocation before; an id reuse cannot be made
        # certain for real, so the integration's id() gives the new optimizer the freed one's.
        monkeypatch.setattr(integration, "id", lambda obj: old_id if obj is adam else id(obj), raising=False)
    _, second = train(epochs=1, model=model, optimizer=adam)
    autolog.end_run()
    run = only_run(memory_store)
    assert history(run.id, "loss") == list(enumerate(first + second))
    assert history(run.id, "lr_1") == [(s, 0.01) for s in range(3, 6)]
    assert run.params["optimizer"] == "SGD" and run.params["optimizer_1"] == "Adam"


def test_a_fine_tunes_second_stage_counts_its_steps_while_the_first_optimizer_lives(
    memory_store: MemoryBackend,
) -> None:
    """Optimizers bound to names of their own, each still referenced while the next trains alone. One on other
    parameters than the first's (``opt_body`` after ``opt_head``) is told from a GAN's second optimizer at its second
    step with none of the first's between: its first step shares the first stage's last, then its steps are counted
    on. One sharing parameters with the current one (``opt_full``; a GAN's two never do) is a new stage from its
    first step."""
    model = Net()
    opt_head = torch.optim.SGD(model.body[2].parameters(), lr=0.1)
    _, first = train(epochs=1, model=model, optimizer=opt_head)
    opt_body = torch.optim.SGD(model.body[0].parameters(), lr=0.2)
    _, second = train(epochs=1, model=model, optimizer=opt_body)
    opt_full = torch.optim.Adam(model.parameters(), lr=0.01)
    _, third = train(epochs=1, model=model, optimizer=opt_full)
    autolog.end_run()
    run = only_run(memory_store)
    steps = [0, 1, 2, 2, 3, 4, 5, 6, 7]
    assert history(run.id, "loss") == list(zip(steps, first + second + third, strict=True))
    assert history(run.id, "lr") == [(s, 0.1) for s in range(3)]
    assert history(run.id, "lr_1") == [(s, 0.2) for s in (2, 3, 4)]
    assert history(run.id, "lr_2") == [(s, 0.01) for s in (5, 6, 7)]
    assert opt_head.param_groups and opt_body.param_groups  # alive to the end


def test_a_validation_pass_without_no_grad_is_not_the_training_loss(memory_store: MemoryBackend) -> None:
    """Losses computed with grad during a pass over another DataLoader (validation written without no_grad) were
    averaged into the next step's training loss; only the training loader's count."""
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_loader, val_loader = make_loader(), make_loader(n=32)
    losses = []
    for _ in range(2):
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        for x, y in val_loader:  # grad on: the losses require grad, and no step follows them
            torch.nn.functional.cross_entropy(model(x), y)
    autolog.end_run()
    run = only_run(memory_store)
    assert history(run.id, "loss") == list(enumerate(losses))
    assert history(run.id, "epoch") == [(0, 0), (3, 1)]  # the validation loader's passes are not epochs


def test_a_loss_written_by_hand_is_the_scalar_backward_was_called_on(memory_store: MemoryBackend) -> None:
    model, opt = net_and_sgd()
    losses, accumulated = [], []
    for x, y in make_loader():
        opt.zero_grad()
        loss = ((model(x)[:, 1] - y.float()) ** 2).mean()  # no torch.nn loss anywhere
        loss.backward()
        opt.step()
        losses.append(loss.item())
    for x, _ in make_loader():  # gradient accumulation: two backward() a step, their mean is the step's loss
        parts = []
        for half in (slice(0, 8), slice(8, 16)):
            part = (model(x[half]).logsumexp(1) - model(x[half])[:, 0]).mean()
            part.backward()
            parts.append(part.item())
        opt.step()
        opt.zero_grad()
        accumulated.append(sum(parts) / 2)
    autolog.end_run()
    logged = history(only_run(memory_store).id, "loss")
    assert [s for s, _ in logged] == list(range(6))
    assert [v for _, v in logged] == pytest.approx(losses + accumulated, rel=1e-6)


@pytest.mark.parametrize("divided", [False, True], ids=["loss_backward", "loss_over_2_backward"])
def test_gradient_accumulation_logs_the_mean_of_the_steps_losses(memory_store: MemoryBackend, divided: bool) -> None:
    model, opt = net_and_sgd()
    expected = []
    for x, y in make_loader(n=64):
        parts = []
        for half in (slice(0, 8), slice(8, 16)):
            loss = torch.nn.functional.cross_entropy(model(x[half]), y[half])
            (loss / 2 if divided else loss).backward()
            parts.append(loss.item())
        opt.step()
        opt.zero_grad()
        expected.append(sum(parts) / 2)
    autolog.end_run()
    logged = history(only_run(memory_store).id, "loss")
    assert [s for s, _ in logged] == list(range(4))
    assert [v for _, v in logged] == pytest.approx(expected, rel=1e-6)


def test_a_loss_computed_inside_torch_compile_is_logged(memory_store: MemoryBackend) -> None:
    # Tracing runs the wrapped loss function on fake tensors, and the compiled graph never runs it: before, the
    # fake tensors were logged (and dropped as not numbers) and the real losses never were.
    torch._dynamo.reset()
    model, opt = net_and_sgd()

    @torch.compile(backend="aot_eager")  # dynamo's tracing, without a C++ compiler
    def compute(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(model(x), y)

    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", autolog.AutologWarning)
        for _ in range(2):
            for x, y in make_loader():
                opt.zero_grad()
                loss = compute(x, y)
                loss.backward()
                opt.step()
                losses.append(loss.item())
        autolog.end_run()
    run = only_run(memory_store)
    assert history(run.id, "loss") == list(enumerate(losses))
    assert run.params["model_class"] == f"{Net.__module__}:Net"


def test_one_loss_function_computed_twice_under_one_backward_logs_their_sum(memory_store: MemoryBackend) -> None:
    """A GAN discriminator's objective: the same loss on real and on fake samples, summed, one backward(). The
    loss is that sum, as minimised; a mean is for gradients accumulated over several backward() calls."""
    model, opt = net_and_sgd()
    sums = []
    for x, y in make_loader():
        opt.zero_grad()
        real = torch.nn.functional.cross_entropy(model(x), y)
        fake = torch.nn.functional.cross_entropy(model(-x), 1 - y)
        (real + fake).backward()
        opt.step()
        sums.append((real + fake).item())
    autolog.end_run()
    run = only_run(memory_store)
    assert [s for s, _ in history(run.id, "loss")] == [0, 1, 2]
    assert [v for _, v in history(run.id, "loss")] == pytest.approx(sums, rel=1e-6)


def test_losses_of_torchs_tracing_passes_are_not_logged(memory_store: MemoryBackend) -> None:
    # torch.compile's passes run the model and its loss on fake tensors (values that never exist), and not every
    # pass sets is_compiling(): on a GPU, inductor's did, and its fake loss was averaged into the first real one.
    from torch._subclasses.fake_tensor import FakeTensorMode

    model, opt = net_and_sgd()
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    with FakeTensorMode(allow_non_fake_inputs=True):
        fake = torch.nn.functional.cross_entropy(model(x), y)
        fake.backward()
    losses = []
    for _ in range(3):  # no DataLoader: nothing else clears what the fake pass left
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    autolog.end_run()
    assert history(only_run(memory_store).id, "loss") == list(enumerate(losses))


def test_several_kinds_of_loss_log_each_and_their_total(memory_store: MemoryBackend) -> None:
    model, opt = net_and_sgd()
    expected: dict[str, list[float]] = {"loss": [], "loss/cross_entropy": [], "loss/mse_loss": []}
    for x, y in make_loader():
        opt.zero_grad()
        out = model(x)
        ce = torch.nn.functional.cross_entropy(out, y)
        mse = torch.nn.functional.mse_loss(out[:, 1], y.float())
        total = ce + 0.5 * mse
        total.backward()
        opt.step()
        for key, value in (("loss", total), ("loss/cross_entropy", ce), ("loss/mse_loss", mse)):
            expected[key].append(value.item())
    autolog.end_run()
    run = only_run(memory_store)
    for key, values in expected.items():
        assert history(run.id, key) == list(enumerate(values)), key


def test_a_grad_scalers_scaled_loss_is_logged_unscaled(memory_store: MemoryBackend) -> None:
    model, opt = net_and_sgd()
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    losses = []
    for x, y in make_loader():
        opt.zero_grad()
        loss = ((model(x)[:, 1] - y.float()) ** 2).mean()
        scaler.scale(loss).backward()  # backward() of loss x 1024
        scaler.step(opt)
        scaler.update()
        losses.append(loss.item())
    autolog.end_run()
    assert history(only_run(memory_store).id, "loss") == list(enumerate(losses))


def test_no_grad_losses_and_suppressed_steps_are_not_logged(memory_store: MemoryBackend) -> None:
    model, opt = net_and_sgd()
    loader = make_loader()
    with torch.no_grad():
        for x, y in loader:
            torch.nn.functional.cross_entropy(model(x), y)  # evaluation: no grad, no step
    with autolog.suppress():
        for x, y in loader:
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    assert autolog.search_runs() == []
    _, losses = train(epochs=1, model=model, optimizer=opt)
    autolog.end_run()
    assert [v for _, v in history(only_run(memory_store).id, "loss")] == losses


def test_disable_restores_torch_exactly() -> None:
    import torch.nn.functional as F
    from torch.amp.grad_scaler import GradScaler
    from torch.utils.data import DataLoader

    def originals() -> tuple[object, ...]:
        return (
            F.cross_entropy,
            F.mse_loss,
            DataLoader.__dict__["__iter__"],
            torch.autograd.backward,
            GradScaler.__dict__["scale"],
        )

    before = originals()
    autolog.enable(backend="memory:", sync=True)
    assert all(now is not then for now, then in zip(originals(), before, strict=True))
    autolog.disable()
    assert originals() == before
    from torch.optim.optimizer import _global_optimizer_post_hooks

    assert not any(
        getattr(h, "__module__", "") == "autolog.integrations.torch" for h in _global_optimizer_post_hooks.values()
    )


def test_torchscript_still_compiles_modules_that_call_wrapped_losses(memory_store: MemoryBackend) -> None:
    class Scripted(torch.nn.Module):
        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.mse_loss(x, y) + torch.nn.functional.l1_loss(x, y)

    x, y = torch.ones(3), torch.zeros(3)
    assert torch.jit.script(Scripted())(x, y).item() == 2.0
    assert torch.jit.script(torch.nn.MSELoss())(x, y).item() == 1.0


SYNC_METHODS = ("item", "tolist", "__float__", "__int__", "__bool__", "numpy")


def count_syncs(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count host-device sync calls made on this (the training) thread; the writer thread is not counted."""
    counts = dict.fromkeys(SYNC_METHODS, 0)
    me = threading.get_ident()
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original):  # type: ignore[no-untyped-def]
            if threading.get_ident() == me:
                counts[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


@pytest.mark.parametrize("hand_written", [False, True], ids=["nn_loss", "hand_written_loss"])
def test_no_extra_item_or_other_sync_on_the_training_thread(
    monkeypatch: pytest.MonkeyPatch, hand_written: bool
) -> None:
    backend = MemoryBackend("memory:async")
    counts = count_syncs(monkeypatch)

    def loop() -> None:
        torch.manual_seed(0)
        model = Net()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            for x, y in make_loader():
                opt.zero_grad()
                out = model(x)
                loss = (
                    (out.logsumexp(1) - out[:, 0]).mean() if hand_written else torch.nn.functional.cross_entropy(out, y)
                )
                loss.backward()
                opt.step()

    loop()
    without = dict(counts)
    counts.update(dict.fromkeys(counts, 0))
    autolog.enable(backend=backend, flush_interval=0.01)  # the real asynchronous writer: it reads the tensors
    loop()
    with_autolog = dict(counts)
    autolog.end_run()  # the end (flush, model snapshot) is outside the loop
    assert len(backend.history[(next(iter(backend.runs)), "loss")]) == 6  # the loss was logged
    assert with_autolog == without


def run_script(code: str, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=timeout, cwd=tmp_path, check=False
    )


SCRIPT = """
    import torch, autolog
    autolog.enable(backend="sqlite:///{db}")
    torch.manual_seed(0)
    ds = torch.utils.data.TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    loader = torch.utils.data.DataLoader(ds, batch_size=16, {loader_args})
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(2):
        for x, y in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
    {tail}
"""


def read_store(db: Path) -> tuple[list[tuple[str, str]], int]:
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT id, status FROM runs").fetchall()
        losses = con.execute("SELECT COUNT(*) FROM metrics WHERE key = 'loss'").fetchone()[0]
    finally:
        con.close()
    return runs, losses


@pytest.mark.parametrize(
    ("tail", "status", "code"),
    [
        ("print('done')", "FINISHED", 0),
        ("raise ValueError('boom')", "FAILED", 1),
        ("raise KeyboardInterrupt", "KILLED", -2),  # Python re-raises SIGINT on itself for an uncaught Ctrl-C
    ],
)
def test_the_run_ends_with_the_script(tmp_path: Path, tail: str, status: str, code: int) -> None:
    db = tmp_path / "runs.db"
    proc = run_script(SCRIPT.format(db=db, loader_args="", tail=tail), tmp_path)
    assert proc.returncode == code, proc.stderr
    runs, losses = read_store(db)
    assert [s for _, s in runs] == [status], proc.stderr
    assert losses == 8, proc.stderr


def test_dataloader_workers_create_no_runs(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code = SCRIPT.format(
        db=db,
        loader_args="num_workers=2, multiprocessing_context='fork', persistent_workers=False",
        tail="print(autolog.flush(30))",
    )
    proc = run_script(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"
    runs, losses = read_store(db)
    assert [s for _, s in runs] == ["FINISHED"]
    assert losses == 8  # 4 batches x 2 epochs, nothing from the workers


def test_schema_used_by_read_store_is_the_sqlite_backends(tmp_path: Path) -> None:
    """read_store above reads the SQLite tables directly: check it against the read API once."""
    db = tmp_path / "runs.db"
    proc = run_script(SCRIPT.format(db=db, loader_args="", tail="autolog.end_run()"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    autolog.enable(backend=f"sqlite:///{db}")
    (run,) = autolog.search_runs()
    assert read_store(db) == ([(run.id, "FINISHED")], len(autolog.get_metric_history(run.id, "loss")))
    assert json.loads(json.dumps(run.params))["optimizer"] == "SGD"
    assert os.path.exists(db)


DDP_SCRIPT = """
    import json, os, torch, autolog
    import torch.distributed as dist
    import torch.multiprocessing as mp
    autolog.enable(backend="sqlite:///{db}")  # at the top: spawned workers re-import the script and enable too

    def work(rank, world):
        dist.init_process_group("gloo", rank=rank, world_size=world)
        torch.manual_seed(rank)  # each rank its own data: different losses
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(4):
            x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with open(f"losses-{{rank}}.jsonl", "a") as fh:
                fh.write(json.dumps([step, loss.item()]) + "\\n")
        dist.destroy_process_group()

    if __name__ == "__main__":
        if "RANK" in os.environ:  # torchrun started this process as one rank
            work(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
        else:  # torch.multiprocessing.spawn: this process starts the two ranks
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}")
            mp.spawn(work, args=(2,), nprocs=2)
"""


@pytest.mark.parametrize("launcher", ["torchrun", "mp.spawn"])
def test_distributed_two_ranks_one_run_with_rank_zero_losses(tmp_path: Path, launcher: str) -> None:
    """A plain DistributedDataParallel loop in two processes (gloo), started by torchrun or by
    torch.multiprocessing.spawn: one run, rank 0's losses step by step; rank 1 opens no run (before, each rank
    opened its own)."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    db = tmp_path / "runs.db"
    (tmp_path / "ddp.py").write_text(textwrap.dedent(DDP_SCRIPT.format(db=db, port=port)), encoding="utf-8")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*(torchrun if launcher == "torchrun" else [sys.executable]), "ddp.py"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT status FROM runs").fetchall()
        logged = con.execute("SELECT step, value FROM metrics WHERE key = 'loss' ORDER BY step").fetchall()
        rank = con.execute("SELECT value FROM tags WHERE key = 'autolog.rank'").fetchall()
    finally:
        con.close()

    def computed(rank: int) -> list[tuple[int, float]]:
        lines = (tmp_path / f"losses-{rank}.jsonl").read_text(encoding="utf-8").splitlines()
        return [(int(step), float(loss)) for step, loss in map(json.loads, lines)]

    assert runs == [("FINISHED",)] and rank == ([("0",)] if launcher == "torchrun" else [])  # the launcher's RANK
    assert logged == computed(0) and computed(1) != computed(0)


class BrokenRequiresGrad(torch.Tensor):
    """A user's tensor subclass whose ``requires_grad`` property raises: the loss wrapper's own check of the result
    fails, as a bug of ours after the user's call would."""

    @property
    def requires_grad(self) -> bool:  # type: ignore[override]
        raise RuntimeError("a broken requires_grad")


def test_an_error_after_the_users_loss_call_is_counted_and_the_loss_returned(
    memory_store: MemoryBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autolog import _errors

    monkeypatch.setenv("AUTOLOG_TESTING", "0")  # as a user runs it: swallowed, counted, warned
    before = _errors.errors["torch:loss_capture"]
    x = torch.randn(4, 2, requires_grad=True).as_subclass(BrokenRequiresGrad)
    target = torch.zeros(4, 2)
    with pytest.warns(autolog.AutologWarning, match="torch:loss_capture"):
        result = torch.nn.functional.mse_loss(x, target)
    assert type(result) is BrokenRequiresGrad
    assert torch.Tensor.requires_grad.__get__(result) is True  # the user's loss itself, its graph kept
    assert torch.equal(result.as_subclass(torch.Tensor), ((x.as_subclass(torch.Tensor) - target) ** 2).mean())
    assert _errors.errors["torch:loss_capture"] == before + 1
    monkeypatch.setenv("AUTOLOG_TESTING", "1")  # the suite's mode: raised, so that no bug of ours goes unseen
    with pytest.raises(_errors.AutologInternalError, match="a broken requires_grad"):
        torch.nn.functional.mse_loss(x, target)
