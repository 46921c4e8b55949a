"""Plain PyTorch loops (no Lightning): a hand-written ``for x, y in loader: ... optimizer.step()`` records itself.

What is logged, with no change to the loop:
- a run that starts at the first optimizer step (or joins the run the user started) and ends at
  ``autolog.end_run()``, when the script ends (FINISHED; FAILED / KILLED when it dies of an exception), or when an
  optimizer of another model steps after the one that started the run was freed (the next training: its own run);
- params: optimizer class and param-group settings, the model's class and parameter counts, the DataLoader's
  batch size;
- per step (the optimizer step count): ``loss`` from ``torch.nn`` loss modules and ``torch.nn.functional`` losses
  computed with grad since the previous step (the mean when several calls of one loss; ``loss/<name>`` each when
  several losses, and ``loss`` their total, the scalar ``backward()`` was called on; not those of a DataLoader pass
  without an optimizer step, e.g. validation without no_grad); with no ``torch.nn`` loss (one written by hand, one
  computed inside ``torch.compile``), ``loss`` is the scalar ``backward()`` was called on, unscaled by a GradScaler;
  ``lr`` of each param group, ``epoch`` (passes over the training DataLoader);
- the final model (state dict + class path), reloadable with ``autolog.load_model``.

How: torch's own global optimizer step hook (``register_optimizer_step_post_hook``); the ``torch.nn.functional``
loss functions (which the loss modules call), ``torch.autograd.backward``, ``GradScaler.scale`` and
``DataLoader.__iter__`` are wrapped. A global forward pre-hook finds
the model (the module called whose parameters the optimizer holds) and is removed at the first step. Loss tensors
are detached and read by the writer thread: the training thread never calls ``.item()``.

Under distributed training (torchrun, SLURM: several processes, one per rank) only global rank 0 logs: one run per
training. Stands down while Lightning drives the loop. Supported: torch >= 2.0. Off:
``autolog.enable(disable_for=["torch"])`` or ``AUTOLOG_DISABLE=torch``.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autolog import _errors, patching, runs, session
from autolog.integrations import Integration
from autolog.integrations._torch_model import class_path, snapshot
from autolog.patching import registry
from autolog.records import FINISHED
from autolog.tags import env_rank

if TYPE_CHECKING:
    import torch

NAME = "torch"
SITE_STEP = _errors.register_site("torch:optimizer_step")
SITE_END = _errors.register_site("torch:run_end")
SITE_CAPTURE = "torch:loss_capture"  # not a firewall site: the loss and backward() wrappers report their own errors
_MAX_PENDING = 256  # losses computed with grad and no optimizer step yet: bounded (inference with grad never steps)
_MAX_BACKWARD = 64  # tensors backward() was called on since the last step: bounded (a loop without torch.optim)
_MAX_SEEN = 4096  # modules remembered while looking for the model


def _loss_names(F: Any) -> list[str]:
    extra = ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div")
    return sorted({n for n in dir(F) if n.endswith("_loss") and callable(getattr(F, n))} | set(extra))


class _Mean:
    """Mean of several loss tensors of one step, computed on the writer thread (``.item()`` there, not here)."""

    __slots__ = ("tensors",)

    def __init__(self, tensors: list[Any]) -> None:
        self.tensors = tensors

    def item(self) -> float:
        return sum(float(t.item()) for t in self.tensors) / len(self.tensors)


def _gone() -> None:
    return None


class _Loop:
    """What the plain-loop integration knows in this process."""

    def __init__(self) -> None:
        self.local = threading.local()  # loss-call nesting depth per thread
        self.pending: deque[tuple[str, Any]] = deque(maxlen=_MAX_PENDING)
        # The scalars backward() was called on since the last step (detached: a graph kept with retain_graph is
        # never held here), and the loss a GradScaler scaled last (weak reference to the scaled tensor, the loss).
        self.backward: deque[Any] = deque(maxlen=_MAX_BACKWARD)
        self.scaled: tuple[Callable[[], Any], Any] | None = None
        self.stand_down = 0  # > 0 while a Lightning fit runs in this process (also in spawned DDP workers)
        self.handles: list[Any] = []
        self.finder: Any = None  # the forward pre-hook handle while looking for the model
        self.seen: dict[int, weakref.ref[Any]] = {}
        self.loader_passes: dict[int, int] = {}  # id(DataLoader) -> passes begun
        self.loaders: dict[int, weakref.ref[Any]] = {}  # id(DataLoader) -> the loader (a new one may reuse an id)
        self.last_loader: weakref.ref[Any] | None = None
        self.reset_run()

    def reset_run(self) -> None:
        self.run: runs.ActiveRun | None = None
        self.step = 0
        self.primary: int | None = None
        self.primary_ref: Callable[[], Any] = _gone  # the optimizer that started the run, while it lives
        self.owned = False  # the run was opened here (not the user's, joined)
        self.lr_keys: dict[int, list[str]] = {}  # id(optimizer) -> its lr keys
        self.optimizers: dict[int, weakref.ref[Any]] = {}  # id(optimizer) -> the optimizer (an id can be reused)
        self.marks: dict[int, int] = {}  # id(optimizer) -> ``step`` after its last step, for those not primary
        self.n_optimizers = 0  # optimizers logged in this run: the next one's index
        self.model: Any = None  # held until the run ends: its final weights are the run's model
        self.train_loader: int | None = None
        self.epoch = -1
        self.epoch_base = 0  # passes of the train loader begun before this run's (a sweep's trials share a loader)


_loop = _Loop()


class TorchIntegration(Integration):
    name = NAME
    modules = ("torch",)
    distribution = "torch"
    min_version = "2.0"

    def patch(self, module_name: str) -> None:
        import torch
        import torch.nn.functional as F
        from torch.amp.grad_scaler import GradScaler
        from torch.optim.optimizer import register_optimizer_step_post_hook
        from torch.utils.data import DataLoader

        for name in _loss_names(F):
            registry.patch(NAME, F, name, _loss_wrapper(name))
        registry.patch(NAME, DataLoader, "__iter__", _iter_wrapper)
        registry.patch(NAME, torch.autograd, "backward", _backward_wrapper(torch.Tensor))
        registry.patch(NAME, GradScaler, "scale", _scale_wrapper)
        _loop.handles.append(register_optimizer_step_post_hook(_after_step))
        _watch_forward(_loop.model is None)  # the model of a run still open is known already

    def unpatch(self) -> None:
        for handle in _loop.handles:
            handle.remove()
        _loop.handles.clear()
        _watch_forward(False)
        registry.revert(NAME)


def stand_down(on: bool) -> None:
    """Lightning calls this around a fit: its own integration logs, so the plain-loop one keeps quiet."""
    _loop.stand_down += 1 if on else -1
    _drop_losses()
    _watch_forward(not on and _loop.stand_down == 0 and bool(_loop.handles) and _loop.model is None)


def _active() -> bool:
    return _loop.stand_down <= 0 and patching.gate(NAME)


def _drop_losses() -> None:
    _loop.pending.clear()
    _loop.backward.clear()
    _loop.scaled = None


# -- losses ------------------------------------------------------------------------------------------------------
def _loss_wrapper(name: str) -> Any:
    from torch import Tensor as tensor_type
    from torch.compiler import is_compiling

    loop = _loop
    local = loop.local
    pending = loop.pending
    enabled = session.enabled

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        depth = getattr(local, "depth", 0)
        if depth:  # a loss computed inside another (e.g. a loss module's own helpers): count the outer one
            return wrapped(*args, **kwargs)
        local.depth = 1
        try:
            result = wrapped(*args, **kwargs)
        finally:
            local.depth = 0
        # The full gate runs at the step; here only what is cheap. Losses never followed by a step fall off the
        # bounded deque. Inside torch.compile's tracing the result is a fake tensor, and this code does not run
        # when the compiled graph does: such a loss is found by its backward() instead.
        try:
            if (
                loop.stand_down <= 0  # first: under Lightning, the one check made
                and getattr(result, "requires_grad", False)
                and enabled()
                and (type(result) is tensor_type or not _traced(result))
                and not is_compiling()
            ):
                pending.append((name, result.detach()))  # no sync: the writer reads it
        except Exception as exc:  # noqa: BLE001 - ours, after the user's call returned: never raised into training
            _capture_error(exc)
        return result

    return wrapper


def _capture_error(exc: BaseException) -> None:
    """An error of ours after a wrapped loss or ``backward()`` returned (a tensor subclass whose attributes raise):
    counted and warned, raised in test mode; the user's result is returned all the same."""
    _errors.internal_error(SITE_CAPTURE, exc)


def _traced(tensor: Any) -> bool:
    """A tensor of torch's tracing (FakeTensor, FunctionalTensor: torch.compile's graph capture, AOT autograd), whose
    values never exist; ``is_compiling()`` is not true in every such pass."""
    return str(type(tensor).__module__).startswith("torch._subclasses")


def _backward_wrapper(tensor_type: Any) -> Any:
    """``torch.autograd.backward`` (which ``Tensor.backward`` calls): the scalar the loop minimises. It is the
    step's ``loss`` when no ``torch.nn`` loss was computed (a loss written by hand, one computed in a compiled
    function), and the total beside ``loss/<name>`` when several kinds were."""
    from torch.compiler import is_compiling

    loop = _loop
    backward = loop.backward
    pending = loop.pending
    enabled = session.enabled

    def wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        result = wrapped(*args, **kwargs)
        if len(pending) == 1:  # the common case: the step's one torch.nn loss is its loss; this scalar is not needed
            backward.append(None)  # (but the call is counted: accumulated gradients are several calls)
            return result
        if loop.stand_down > 0:  # Lightning drives the loop (its losses are never pending: the common case there)
            return result
        try:
            _keep_backward(args, kwargs)
        except Exception as exc:  # noqa: BLE001 - ours, after the user's call returned: never raised into training
            _capture_error(exc)
        return result

    def _keep_backward(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        tensor: Any = args[0] if args else kwargs.get("tensors")
        if (
            (type(tensor) is tensor_type or (isinstance(tensor, tensor_type) and not _traced(tensor)))
            and tensor.numel() == 1
            and enabled()
            and not is_compiling()
        ):
            scaled = loop.scaled
            if scaled is not None and scaled[0]() is tensor:  # a GradScaler's scaled loss: the loss itself
                tensor = scaled[1]
                loop.scaled = None
            backward.append(tensor.detach())

    return wrapper


def _scale_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``GradScaler.scale(loss)``: remember which loss the scaled tensor is (its backward() is the loss's)."""
    result = wrapped(*args, **kwargs)
    outputs: Any = args[0] if args else kwargs.get("outputs")
    if result is not outputs and hasattr(result, "numel") and hasattr(outputs, "detach"):
        try:
            _loop.scaled = (weakref.ref(result), outputs.detach())
        except TypeError:  # not weak-referenceable
            _loop.scaled = None
    return result


# -- DataLoader passes ---------------------------------------------------------------------------------------------
def _iter_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if _active():
        # Losses still waiting for a step when a pass begins are not the next step's: a validation pass written
        # without no_grad (no step in it), or a training aborted between its loss and its step (an exception, a
        # notebook cell interrupted) before the next training's first pass. The next step would average them in.
        _drop_losses()
        key = id(instance)
        ref = _loop.loaders.get(key)
        if ref is None or ref() is not instance:  # a loader not seen before, perhaps where a freed one was
            _loop.loaders[key] = weakref.ref(instance)
            _loop.loader_passes[key] = 0
        _loop.loader_passes[key] += 1
        _loop.last_loader = weakref.ref(instance)
    return wrapped(*args, **kwargs)


# -- finding the model -------------------------------------------------------------------------------------------
def _watch_forward(on: bool) -> None:
    """A global forward pre-hook remembers the modules called until the first step finds the model."""
    if on and _loop.finder is None:
        from torch.nn.modules.module import register_module_forward_pre_hook

        _loop.finder = register_module_forward_pre_hook(_seen)
    elif not on and _loop.finder is not None:
        _loop.finder.remove()
        _loop.finder = None


def _seen(module: Any, args: Any) -> None:
    seen = _loop.seen
    ref = seen.get(id(module))
    if ref is None or ref() is not module:  # new, or a dead module's id reused
        if len(seen) >= _MAX_SEEN:
            for key in [k for k, r in seen.items() if r() is None]:
                del seen[key]
        if len(seen) < _MAX_SEEN:
            seen[id(module)] = weakref.ref(module)


def _find_model(optimizer: torch.optim.Optimizer) -> Any:
    """The module called whose parameters overlap the optimizer's most, the smallest such by its trainable
    parameters; among equals (a model and its only submodule share every parameter; a model whose frozen backbone
    leaves only its head to train) the outermost, in the order they were called; then unwrapped from DataParallel /
    DistributedDataParallel / torch.compile."""
    params = {id(p) for group in optimizer.param_groups for p in group["params"]}
    best, best_key = None, (0, 0)
    ties: list[Any] = []
    for ref in list(_loop.seen.values()):
        module = ref()
        if module is None:
            continue
        overlap = trainable = 0
        for p in module.parameters():
            overlap += id(p) in params
            trainable += p.requires_grad
        key = (overlap, -trainable)
        if overlap and key > best_key:
            best, best_key, ties = module, key, [module]
        elif overlap and key == best_key:
            ties.append(module)
    for module in ties:  # the seen dict's order is not the call order when a dead module's id was reused
        if module is not best and any(sub is best for sub in module.modules()):
            best = module
    return _unwrap(best)


def _unwrap(module: Any) -> Any:
    for _ in range(4):
        inner = getattr(module, "_orig_mod", None)  # torch.compile
        if inner is None and type(module).__name__ in ("DataParallel", "DistributedDataParallel"):
            inner = getattr(module, "module", None)
        if inner is None:
            return module
        module = inner
    return module


# -- the step ----------------------------------------------------------------------------------------------------
def _after_step(optimizer: Any, args: Any, kwargs: Any) -> None:
    if not _active():
        _drop_losses()
        return
    _errors.firewall(SITE_STEP, _on_step, optimizer)


def _on_step(optimizer: Any) -> None:
    loop = _loop
    run = loop.run
    if run is None or run.ended:
        if _rank() != 0:  # a distributed worker of another rank (torchrun, SLURM): one run per training, rank 0's
            _drop_losses()
            return
        run = _start(optimizer)
    key = id(optimizer)
    if key == loop.primary and loop.primary_ref() is optimizer:  # the common case (an id alone can be reused)
        step = loop.step
        loop.step += 1
        if loop.model is None and loop.step <= _FIND_STEPS:
            _find_and_log_model(run, optimizer)
    elif loop.primary_ref() is None:  # the optimizer that started the run is gone: this one starts a new training
        run, step = _next_training(run, optimizer)
    elif not _known(optimizer):
        _log_optimizer(run, optimizer)
        if _shares_parameters(optimizer, loop.primary_ref()):
            step = _promote(optimizer)  # a fine-tune's next stage (the first optimizer still referenced)
        else:  # a GAN's second optimizer: it steps beside the primary, at the primary's step
            step = max(loop.step - 1, 0)
            loop.marks[key] = loop.step
    elif loop.marks.get(key) == loop.step:
        # Its second step with none of the primary's between: not a GAN's second optimizer but a stage of its own,
        # on other parameters than the first's (a backbone after a head): its steps are counted from now on.
        step = _promote(optimizer)
    else:
        step = max(loop.step - 1, 0)
        loop.marks[key] = loop.step
    n = session.options().log_every_n_steps
    if n > 1 and step % n:
        _drop_losses()
        return
    metrics: dict[str, Any] = _losses()
    for k, group in zip(loop.lr_keys[key], optimizer.param_groups, strict=False):
        lr = group["lr"]
        if type(lr) is not float and hasattr(lr, "clone"):
            lr = lr.detach().clone()  # a tensor lr is updated in place by schedulers (fill_): keep this step's value
        metrics[k] = lr
    if loop.train_loader is not None:
        epoch = loop.loader_passes.get(loop.train_loader, 1) - 1 - loop.epoch_base
        if epoch != loop.epoch:
            loop.epoch = epoch
            metrics["epoch"] = epoch
    run.put_metrics(metrics, step)  # losses detached by the loss wrapper, learning rates plain numbers


_FIND_STEPS = 3  # a model not found at a run's first step is looked for at the next steps, up to this one


def _next_training(run: runs.ActiveRun, optimizer: Any) -> tuple[runs.ActiveRun, int]:
    """The first step of an optimizer while the one that started the run has been freed.

    When it optimizes another model than the run's, the training before is over (a sweep's next trial in the same
    script, a notebook cell run again with a new model): a run this integration opened ends there (FINISHED, with
    its model) and the new training gets a run of its own, its steps counted from 0. When it optimizes the run's
    model (a fine-tune's next stage, an optimizer made anew), or the run is one it joined (the user's, never ended
    here), the new optimizer continues the run and its step count, logged as a further optimizer (a param cannot
    change its value within a run). With two optimizers alive (a GAN's) this is never reached."""
    loop = _loop
    if loop.owned and not _optimizes(optimizer, loop.model):
        losses, backward = list(loop.pending), list(loop.backward)  # this step's: the new training's
        run.end(FINISHED, wait=False)  # its on_end logs the previous model, resets the loop, watches forward calls
        loop.pending.extend(losses)
        loop.backward.extend(backward)
        run = _start(optimizer)  # the new model, called before this step, is found from the next step's calls
    else:
        loop.primary, loop.primary_ref = id(optimizer), weakref.ref(optimizer)
        if not _known(optimizer):  # (its id may be the freed one's: then it is logged as the new one it is)
            _log_optimizer(run, optimizer)
    step = loop.step
    loop.step += 1
    return run, step


def _promote(optimizer: Any) -> int:
    """Make ``optimizer`` the one whose steps are counted: the step it takes now."""
    loop = _loop
    loop.primary, loop.primary_ref = id(optimizer), weakref.ref(optimizer)
    step = loop.step
    loop.step += 1
    return step


def _shares_parameters(optimizer: Any, other: Any) -> bool:
    """Whether two optimizers update any parameter in common (a GAN's two never do; a fine-tune's stages do)."""
    if other is None:
        return False
    ids = {id(p) for group in other.param_groups for p in group["params"]}
    return any(id(p) in ids for group in optimizer.param_groups for p in group["params"])


def _optimizes(optimizer: Any, model: Any) -> bool:
    """Whether ``optimizer`` holds any of ``model``'s parameters (False for a model not known)."""
    if model is None:
        return False
    ids = {id(p) for p in model.parameters()}
    return any(id(p) in ids for group in optimizer.param_groups for p in group["params"])


def _rank() -> int:
    """This process's global rank: torch.distributed's once a process group exists, else its launcher's."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return env_rank()


def _losses() -> dict[str, Any]:
    pending, backward = _loop.pending, _loop.backward
    if len(pending) == 1:  # the common case: one torch.nn loss (its backward() is not needed)
        backward.clear()
        return {"loss": pending.pop()[1]}
    if not pending:  # no torch.nn loss: the scalar(s) backward() was called on, if any
        total = _backward_total()
        return {} if total is None else {"loss": total}
    by_name: dict[str, list[Any]] = {}
    for name, tensor in pending:
        by_name.setdefault(name, []).append(tensor)
    pending.clear()
    single = len(by_name) == 1
    out: dict[str, Any] = {}
    for name, tensors in by_name.items():
        out["loss" if single else f"loss/{name}"] = tensors[0] if len(tensors) == 1 else _Mean(tensors)
    if (not single or len(backward) == 1) and (total := _backward_total()) is not None:
        # Several kinds: their total, as minimised. One kind computed several times with ONE backward() over them
        # (a GAN discriminator's real + fake terms, auxiliary heads): that scalar is the objective, not their mean
        # (the mean is for gradients accumulated over several backward() calls).
        out["loss"] = total
    backward.clear()
    return out


def _backward_total() -> Any:
    """The step's backward() scalars (the mean when several: accumulated gradients), None when none was kept (each
    call had the step's one torch.nn loss); empties them."""
    backward = _loop.backward
    tensors = [t.reshape(()) for t in backward if t is not None]
    backward.clear()
    _loop.scaled = None
    if not tensors:
        return None
    return tensors[0] if len(tensors) == 1 else _Mean(tensors)


def _run_name() -> str:
    """The script's name (``train`` for ``train.py``): a plain loop's run spans the script. In a Jupyter kernel
    (whose ``argv[0]`` is ipykernel's launcher) the notebook's, as Jupyter (``JPY_SESSION_NAME``) or VS Code
    (``__vsc_ipynb_file__``) names it, else ``notebook``."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).stem in ("ipykernel_launcher", "__main__") and "ipykernel" in script:
        notebook = os.environ.get("JPY_SESSION_NAME") or getattr(sys.modules.get("__main__"), "__vsc_ipynb_file__", "")
        return Path(str(notebook or "")).stem or "notebook"
    return Path(script).stem if script.endswith(".py") else "torch"


def _start(optimizer: Any) -> runs.ActiveRun:
    """The first step: join the active run (the user's) or open one for the rest of the script."""
    loop = _loop
    loop.reset_run()
    run = runs.active_run()
    if run is None or (session.options().exclusive and run.user_started):
        run = runs.new_run(_run_name(), tags={"autolog.integration": NAME})
        run.state[runs.PLAIN_LOOP] = True  # a Keras or Lightning fit after the loop is a run of its own
        runs.set_ambient(run)
        loop.owned = True
    loop.run = run
    loop.primary, loop.primary_ref = id(optimizer), weakref.ref(optimizer)
    run.state.setdefault("on_end", []).append(_on_end)
    _find_and_log_model(run, optimizer)
    loader = loop.last_loader() if loop.last_loader is not None else None
    if loader is not None:
        loop.train_loader = id(loader)
        loop.epoch_base = loop.loader_passes.get(id(loader), 1) - 1  # the pass under way is this run's epoch 0
        size = loader.batch_size
        if size is None:
            size = getattr(loader.batch_sampler, "batch_size", None)
        if size is not None:
            run.log_params({"batch_size": size})
    _log_optimizer(run, optimizer)
    return run


def _find_and_log_model(run: runs.ActiveRun, optimizer: Any) -> None:
    loop = _loop
    model = _find_model(optimizer)
    if model is None:
        return
    loop.model = model
    _watch_forward(False)
    run.log_params(
        {
            "model_class": class_path(model),
            "model_parameters": sum(p.numel() for p in model.parameters()),
            "model_trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        }
    )


def _known(optimizer: Any) -> bool:
    """Whether this optimizer (not merely its id, which a freed one may have had) is one of the run's."""
    ref = _loop.optimizers.get(id(optimizer))
    return ref is not None and ref() is optimizer


def _log_optimizer(run: runs.ActiveRun, optimizer: Any) -> None:
    loop = _loop
    index = loop.n_optimizers
    loop.n_optimizers += 1
    prefix = "optimizer" if index == 0 else f"optimizer_{index}"
    groups = optimizer.param_groups
    params: dict[str, Any] = {prefix: type(optimizer).__name__}
    keys = []
    for i, group in enumerate(groups):
        where = prefix if len(groups) == 1 else f"{prefix}.pg{i}"
        params.update({f"{where}.{k}": v for k, v in group.items() if k != "params"})
        lr = "lr" if index == 0 else f"lr_{index}"
        keys.append(lr if len(groups) == 1 else f"{lr}/pg{i}")
    loop.lr_keys[id(optimizer)] = keys
    loop.optimizers[id(optimizer)] = weakref.ref(optimizer)
    run.log_params(params)


def _on_end(run: runs.ActiveRun, status: str) -> None:
    """Called by ``ActiveRun.end`` (also at exit): log the model, and let the next step open a new run."""
    loop = _loop
    model = loop.model
    if loop.run is run:
        loop.reset_run()
        _watch_forward(bool(loop.handles) and loop.stand_down <= 0)
    _drop_losses()
    if model is not None and session.options().log_models:
        _errors.firewall(SITE_END, lambda: run.log_model(snapshot(model)))
