"""One batch under `AlternatingOptimizersMixin`: the cadence model (`lightning_optim_recipes.cadence`) run with real
effects. Each active optimizer's turn runs its step function with 1.x's closure (zero_grad, backward, step, or the
module's own ``optimizer_step``), and its schedulers step where the model says."""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import torch

from lightning_optim_recipes import cadence, hooks
from lightning_optim_recipes.errors import RecipeError
from lightning_optim_recipes.mixins._alternation import Plan, State, restore_grads
from lightning_optim_recipes.sharding import reshard
from lightning_optim_recipes.validation import SchedulerSpec


@functools.lru_cache(maxsize=64)
def _step_takes_closure(cls: Any) -> bool:
    parameter = inspect.signature(cls.step).parameters.get("closure")
    return parameter is not None and parameter.default is inspect.Parameter.empty


def needs_closure(optimizer: Any) -> bool:
    """Whether `optimizer.step` requires a closure (LBFGS): it then runs the training step itself."""
    return bool(_step_takes_closure(type(optimizer)))  # type: ignore[arg-type]


def output_of(output: Any, where: str) -> Optional[dict[str, Any]]:
    """A step's output as a new dict with its 'loss' (None: skip the turn)."""
    if output is None:
        return None
    if isinstance(output, torch.Tensor):
        return {"loss": output}
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        return dict(output)
    raise RecipeError(
        f"{where} returned a {type(output).__name__}: return the loss tensor of that optimizer, a dict with a 'loss'"
        " key, or None to skip its step."
    )


class ClosureNotRun(RecipeError):
    """A module's `optimizer_step` override never ran the closure it was given."""


class Turns:
    """`cadence.Effects` for a real batch: each optimizer's turn trains it, as Lightning 1.9 did."""

    def __init__(self, module: Any, plan: Plan, optimizers: Sequence[Any], batch: Any,
                 user_step: Optional[Callable[..., Any]]) -> None:
        self.module, self.plan, self.optimizers, self.batch, self.user_step = module, plan, optimizers, batch, user_step
        self.raw = [getattr(o, "optimizer", o) for o in optimizers]
        self.loss: Optional[torch.Tensor] = None
        self.outputs: list[dict[str, Any]] = []

    def closure(self, index: int, batch_idx: int, window: int) -> Callable[[], Optional[torch.Tensor]]:
        """1.x's closure for optimizer `index`: its step function, zero_grad (on the first batch of its window) and
        backward of the loss divided by its accumulation; returns that divided loss, detached."""
        module, plan = self.module, self.plan
        accumulate = plan.loop.accumulate[index]
        result: dict[str, Any] = {"ran": False, "loss": None, "output": None}

        def optimizer_closure() -> Optional[torch.Tensor]:
            result["ran"] = True
            output = self._step_function(index, batch_idx)
            loss = output.get("loss") if output is not None else None
            if window == 0:
                self._zero_grad(index, batch_idx)
            if output is None or loss is None:
                result["loss"] = result["output"] = None
                return None
            scaled = loss / accumulate if accumulate > 1 else loss
            if plan.backward_1x:
                module.manual_backward(scaled, self.raw[index], index)
            else:
                module.manual_backward(scaled)
            output["loss"] = detached = scaled.detach()  # `output` is the closure's own dict (see `output_of`)
            result["loss"], result["output"] = loss.detach() if accumulate > 1 else detached, output
            return detached

        optimizer_closure.result = result  # type: ignore[attr-defined]
        return optimizer_closure

    def train(self, index: int, batch_idx: int, window: int, closes: bool) -> bool:
        module, plan = self.module, self.plan
        toggle = len(self.optimizers) > 1
        values = {"optimizer": self.raw[index], "optimizer_idx": index}
        if toggle:
            hooks.call(module, "toggle_optimizer", values)
        try:
            closure = self.closure(index, batch_idx, window)
            called = plan.own_optimizer_step and closes
            if called:
                self._call_optimizer_step(index, batch_idx, closure)
            elif closes and needs_closure(self.raw[index]):  # LBFGS re-evaluates the loss itself
                self.optimizers[index].step(closure=closure)
            else:
                closure()
                if closes and closure.result["loss"] is not None:  # type: ignore[attr-defined]
                    self.optimizers[index].step()  # within the turn, as 1.9 stepped: before untoggling
        finally:
            if toggle:
                hooks.call(module, "untoggle_optimizer", values)
            if plan.sharded:  # the next turn gathers the stepped shards, with its own requires_grad
                reshard(plan.sharded)
        result = closure.result  # type: ignore[attr-defined]
        if result["output"] is not None:
            self.loss = result["loss"]
            self.outputs.append(result["output"])
        # a turn whose step returned None is skipped, unless the module's optimizer_step was called to close it
        return called or result["loss"] is not None

    def _call_optimizer_step(self, index: int, batch_idx: int, closure: Callable[[], Any]) -> None:
        module, optimizer = self.module, self.optimizers[index]
        trainer = module.trainer
        hooks.call(module, "optimizer_step", {
            "epoch": trainer.current_epoch, "batch_idx": batch_idx, "optimizer": optimizer, "optimizer_idx": index,
            "optimizer_closure": closure, "on_tpu": False,
            "using_native_amp": str(getattr(trainer, "precision", "")).startswith("16"),
            "using_lbfgs": isinstance(self.raw[index], torch.optim.LBFGS),
        })
        if not closure.result["ran"]:  # type: ignore[attr-defined]
            raise ClosureNotRun(
                f"{type(module).__name__}.optimizer_step did not run the closure of optimizer {index}: the closure"
                " hasn't been executed. HINT: did you call `optimizer_closure()` in your `optimizer_step` hook? It"
                " runs the training step and backward; step with `optimizer.step(closure=optimizer_closure)`, or"
                " call `optimizer_closure()` alone to train without stepping."
            )

    def _step_function(self, index: int, batch_idx: int) -> Optional[dict[str, Any]]:
        """The step function's output as a new dict with its 'loss' (None: skip the turn)."""
        plan, module = self.plan, self.module
        if plan.step_names is not None:
            output = getattr(module, plan.step_names[index])(self.batch, batch_idx)
        elif plan.pass_optimizer_idx:
            output = self.user_step(module, self.batch, batch_idx, index)  # type: ignore[misc]
        else:
            output = self.user_step(module, self.batch, batch_idx)  # type: ignore[misc]
        if plan.step_end:
            output = module.training_step_end(output)
        if isinstance(output, torch.Tensor):  # the usual case, in short
            return {"loss": output}
        return output_of(output, self._where(index))

    def _where(self, index: int) -> str:
        """The step function of optimizer `index`, for messages."""
        plan = self.plan
        if plan.step_names is not None:
            where = f"`{plan.step_names[index]}`"
        elif plan.pass_optimizer_idx:
            where = f"`training_step` for optimizer_idx={index}"
        else:
            where = "`training_step`"
        return where + (" (after `training_step_end`)" if plan.step_end else "")

    def _zero_grad(self, index: int, batch_idx: int) -> None:
        module, optimizer = self.module, self.raw[index]
        trainer = module.trainer
        for callback in trainer.callbacks:
            hook = callback.on_before_zero_grad
            if callable(hook):  # as Lightning calls callbacks' hooks (see `callback_class`)
                hook(trainer, module, optimizer)
        module.on_before_zero_grad(optimizer)
        hooks.call(module, "optimizer_zero_grad", {
            "epoch": trainer.current_epoch, "batch_idx": batch_idx, "optimizer": optimizer, "optimizer_idx": index,
        })

    def step(self, index: int, batch_idx: int, in_turn: bool) -> None:
        if not in_turn:  # a partial window whose optimizer's turn is over: it steps at the epoch's end
            self.optimizers[index].step()
        # in turn: `train` has stepped (or the module's own optimizer_step has stepped, or chosen not to)

    def step_scheduler(self, index: int) -> None:
        spec = self.plan.schedulers[index]
        if spec.reduce_on_plateau and spec.interval == "step":
            state: State = self.module.__dict__["_alternation_state"]
            state.pending_plateau.append(index)  # after the validation that may run on this batch, as Lightning
            return
        step_scheduler(self.module, spec)


def step_scheduler(module: Any, spec: SchedulerSpec) -> None:
    metric = None
    if spec.reduce_on_plateau:
        metrics = module.trainer.callback_metrics
        metric = metrics.get(spec.monitor)
        if metric is None:
            message = (
                f"ReduceLROnPlateau{f' {spec.name!r}' if spec.name else ''} monitors {spec.monitor!r}, which is not"
                f" logged (logged: {', '.join(repr(k) for k in metrics) or 'nothing'}). Log it with `self.log` in a"
                " step or in validation, or fix the 'monitor' key."
            )
            if spec.strict:
                raise RecipeError(message)
            warnings.warn(message + " Skipping this step (strict=False).", RuntimeWarning, stacklevel=2)
            return
    hooks.call(module, "lr_scheduler_step",
                 {"scheduler": spec.scheduler, "optimizer_idx": spec.optimizer_index, "metric": metric})


def step_epoch_schedulers(module: Any, plateau: bool) -> None:
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        return
    for k in cadence.epoch_schedulers_due(plan.loop, module.trainer.current_epoch, plateau):
        step_scheduler(module, plan.schedulers[k])


def step_pending_plateau(module: Any) -> None:
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    state: Optional[State] = module.__dict__.get("_alternation_state")
    if plan is None or state is None or not state.pending_plateau:
        return
    pending, state.pending_plateau = state.pending_plateau, []
    for k in pending:
        step_scheduler(module, plan.schedulers[k])


def is_last_batch(trainer: Any) -> bool:
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return bool(progress.is_last_batch) or progress.current.ready == trainer.num_training_batches


def run_batch(module: Any, batch: Any, batch_idx: int, user_step: Optional[Callable[..., Any]]) -> Any:
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    if plan is None:
        raise RecipeError(
            f"{type(module).__name__}.configure_optimizers did not go through AlternatingOptimizersMixin: do not"
            " replace it after class creation."
        )
    state: State = module.__dict__["_alternation_state"]
    optimizers = module.optimizers()
    if not isinstance(optimizers, list):
        optimizers = [optimizers]
    if state.pending_grads is not None:
        restore_grads(optimizers, state)
    turns = Turns(module, plan, optimizers, batch, user_step)
    module.__dict__["_in_alternation"] = True
    try:
        last = is_last_batch(module.trainer)
        cadence.run_batch(plan.loop, state.loop, batch_idx, last, turns)
        if plan.epoch_end is not None:
            state.epoch_outputs.append(turns.outputs if len(optimizers) > 1 else next(iter(turns.outputs), None))
        if last:
            step_epoch_schedulers(module, plateau=False)
    finally:
        module.__dict__["_in_alternation"] = False
    return None if turns.loss is None else {"loss": turns.loss}


def run_epoch_end_1x(module: Any) -> None:
    """Call a 1.x ``training_epoch_end(outputs)`` with the epoch's outputs, laid out ``outputs[batch][optimizer]``."""
    plan: Optional[Plan] = module.__dict__.get("_alternation_plan")
    state: Optional[State] = module.__dict__.get("_alternation_state")
    if plan is None or plan.epoch_end is None or state is None:
        return
    outputs, state.epoch_outputs = state.epoch_outputs, []
    plan.epoch_end(module, outputs)

