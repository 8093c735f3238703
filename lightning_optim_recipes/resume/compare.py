"""The table of a resume: every setting whose checkpoint value differs from the new recipe's, and the messages."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from torch.optim.lr_scheduler import LambdaLR

from lightning_optim_recipes import schedule_free
from lightning_optim_recipes.resume.checkpoint import Restored, short, steps_taken
from lightning_optim_recipes.resume.state import RECORD_KEY, ResumeDifference, ResumeReport
from lightning_optim_recipes.validation import OptimizerSetup, SchedulerSpec
from lightning_optim_recipes.wsd import anchors_on_load, cooldown_start

__all__ = ["MISSING", "compare", "dropped_message", "table_message"]


MISSING = object()


#: Optimizer options that say how torch computes a step, not what it computes.
_IMPLEMENTATION = frozenset({"params", "foreach", "fused", "capturable", "differentiable"})


#: Scheduler state that is a position or derived from one, not a hyper-parameter.
_SCHEDULER_COUNTERS = frozenset({
    "last_epoch", "base_lrs", "verbose", "lr_lambdas", "optimizer", "T_cur", "T_i", "best", "num_bad_epochs",
    "cooldown_counter", "mode_worse", "lengths",  # `lengths`: the hyper-parameters' lengths as written in units
})


def _show(value: Any) -> str:
    if value is MISSING:
        return "(none)"
    if isinstance(value, Counter):
        return str(sorted(value.elements()))
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Counter) or isinstance(b, Counter):
        return Counter(a) == Counter(b)  # type: ignore[arg-type]
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - tensors and other values without a plain ==
        return a is b


def _group_label(group: Mapping[str, Any], index: int) -> str:
    name = group.get("name")
    return f"group {name!r}" if isinstance(name, str) else f"group {index}"


def compare(setup: OptimizerSetup, restored: Restored, choice: str, recipe_lrs: Optional[list[list[float]]],
             used_groups: Sequence[Optional[Sequence[Mapping[str, Any]]]], positions: Sequence[int],
             keep: Sequence[tuple[bool, str]]) -> tuple[list[ResumeDifference], list[str], list[str]]:
    rows: list[ResumeDifference] = []
    fatal: list[str] = []
    notes: list[str] = []
    recipe = choice == "recipe"
    # a cooldown from where training resumes keeps its settings and sets its optimizer's lrs when Lightning loads it
    cooled = {spec.optimizer_index for spec in setup.schedulers if anchors_on_load(spec.scheduler)}

    def row(what: str, old: Any, new: Any, used: Any) -> None:
        rows.append(ResumeDifference(what, _show(old), _show(new), used if isinstance(used, str) else _show(used)))

    old_count, new_count = len(restored.optimizers), len(setup.optimizers)
    if old_count != new_count:
        row("optimizers", old_count, new_count, new_count if recipe else
            f"{new_count} ({min(old_count, new_count)} restored from the checkpoint)")
    for i in range(min(old_count, new_count)):
        optimizer = getattr(setup.optimizers[i], "_optimizer", setup.optimizers[i])
        saved = restored.optimizers[i]
        label = f"optimizer {i}"
        old_class, new_class = restored.optimizer_class(i), type(optimizer).__name__
        if old_class is not None and short(old_class) != new_class:
            row(f"{label}: class", short(old_class), new_class,
                f"{new_class} ({'state dropped' if not keep[i][0] else 'state kept'})" if recipe
                else f"{new_class} loaded with {short(old_class)}'s param groups and state")
        old_groups, new_groups = saved.get("param_groups") or [], optimizer.param_groups
        if len(old_groups) != len(new_groups):
            row(f"{label}: param groups", len(old_groups), len(new_groups), len(new_groups) if recipe else "(error)")
            if not recipe:
                fatal.append(f"optimizer {i} has {len(new_groups)} param groups, the checkpoint's {len(old_groups)}")
            continue
        for g, (old, new) in enumerate(zip(old_groups, new_groups)):
            where = f"{label}, {_group_label(new, g)}"
            if len(old["params"]) != len(new["params"]):
                row(f"{where}: parameters", len(old["params"]), len(new["params"]),
                    len(new["params"]) if recipe else "(error)")
                if not recipe:
                    fatal.append(f"{where} holds {len(new['params'])} parameters, the checkpoint's"
                                 f" {len(old['params'])}")
            keys = ["lr", "initial_lr"] + [k for k in new if k not in ("lr", "initial_lr")] + [
                k for k in old if k not in new and k not in ("lr", "initial_lr")]
            state_keys = schedule_free.GROUP_STATE_KEYS if schedule_free.is_schedule_free(optimizer) else ()
            for key in keys:
                if key in _IMPLEMENTATION or key == RECORD_KEY or key in state_keys:  # state, not settings
                    continue
                before = old.get(key, MISSING)
                if key == "lr":
                    after: Any = recipe_lrs[i][g] if recipe_lrs is not None else "(unknown)"
                else:
                    after = new.get(key, MISSING)
                loaded = used_groups[i]
                used: Any = loaded[g].get(key, MISSING) if loaded is not None else before
                if key == "lr" and i in cooled and recipe_lrs is not None:
                    used = recipe_lrs[i][g]
                if before is MISSING and after is MISSING or _same(before, after):
                    continue
                row(f"{where}: {key}", before, after, used)
        if not recipe and keep[i][0] is False and "shape" in keep[i][1]:
            fatal.append(f"optimizer {i}: {keep[i][1]}")
            row(f"{label}: parameter shapes", "other", "other", "(error)")
        lacking = sorted(k for k in optimizer.defaults if k in new_groups[0] and k not in old_groups[0]
                         and k not in _IMPLEMENTATION) if old_groups and new_groups else []
        if not recipe and old_class is not None and short(old_class) != new_class and lacking:
            fatal.append(f"optimizer {i} is a {new_class} and the checkpoint's {short(old_class)} param groups lack"
                         f" {', '.join(repr(k) for k in lacking)}, which it reads")
    lambda_note = False
    old_count, new_count = len(restored.schedulers), len(setup.schedulers)
    for k in range(max(old_count, new_count)):
        spec: Optional[SchedulerSpec] = setup.schedulers[k] if k < new_count else None
        old_state = restored.schedulers[k] if k < old_count else None
        saved_cadence = restored.cadence_of(k)
        if spec is None:
            row(f"scheduler {k}", short(saved_cadence.cls) if saved_cadence else "(a scheduler)", MISSING,
                "(none)" if recipe else "(none: its state is not restored)")
            continue
        scheduler = spec.scheduler
        name = type(scheduler).__name__
        label = f"scheduler {k} ({name})"
        if old_state is None:
            row(label, MISSING, name, f"{name} from step {positions[k]}" if recipe else f"{name} from step 0"
                " (the checkpoint has no state for it)")
            continue
        if saved_cadence is not None:
            if short(saved_cadence.cls) != name:
                row(f"scheduler {k}: class", short(saved_cadence.cls), name,
                    name if recipe else f"{name} loaded with {short(saved_cadence.cls)}'s state")
            for key, before, after in (("interval", saved_cadence.interval, spec.interval),
                                       ("frequency", saved_cadence.frequency, spec.frequency),
                                       ("optimizer", saved_cadence.optimizer, spec.optimizer_index)):
                if before != after:
                    row(f"{label}: {key}", before, after, after)  # Lightning saves no cadence: the recipe's
        new_state = scheduler.state_dict()
        if anchors_on_load(scheduler):  # where it starts once Lightning has loaded the checkpoint into it
            new_state["decay_start"] = cooldown_start(old_state, positions[k])
        functional = isinstance(scheduler, LambdaLR)
        for key in list(new_state) + [key for key in old_state if key not in new_state]:
            if key in _SCHEDULER_COUNTERS or key.startswith("_"):
                continue
            before, after = old_state.get(key, MISSING), new_state.get(key, MISSING)
            if _same(before, after):
                continue
            if recipe or before is MISSING or anchors_on_load(scheduler):
                used = after
            elif functional:
                used, lambda_note = f"{_show(after)} (the function)", True
            else:
                used = before
            row(f"{label}: {key}", before, after, used)
        taken = steps_taken(old_state)
        if taken is not None and taken != positions[k] and not spec.reduce_on_plateau:
            row(f"{label}: steps taken", taken, positions[k], positions[k] if recipe else taken)
    if lambda_note:
        notes.append("A LambdaLR (as `warmup_cosine` makes) saves no function: under resume='checkpoint' the recipe's"
                     " function runs on the checkpoint's step count and base lrs, while its attributes say the"
                     " checkpoint's values.")
    return rows, fatal, notes


def table_message(report: ResumeReport) -> str:
    """The resume's table and notes: under ``resume="recipe"`` what the chosen recipe changes (logged), under
    ``"checkpoint"`` what the checkpoint overrides (a warning, with how to silence it)."""
    notes = "".join(f"\n{note}" for note in report.notes)
    silence = " Silence this with `warnings.filterwarnings('ignore', 'Resuming from')`."
    if report.choice == "recipe":
        return (
            f"Resuming from {report.source} with resume='recipe': training keeps the weights, the progress"
            f" (global_step={report.global_step}, epoch {report.epoch}) and the optimizers' state, and uses the new"
            f" recipe where it differs from the checkpoint ({len(report.differences)} settings); every scheduler"
            f" continues at the step training has reached.\n{report.table()}{notes}"
        )
    return (
        f"Resuming from {report.source} with resume='checkpoint' (Lightning's behaviour): the checkpoint's optimizer"
        f" and scheduler settings replace what `configure_optimizers` built, so {len(report.differences)} settings of"
        f" the recipe do not apply as written.\n{report.table()}{notes}\nTo train with the new recipe from where"
        " training stands (keeping the weights, global_step, epoch and the optimizers' moments), set `resume ="
        " \"recipe\"` on the module (OptimRecipeMixin, AlternatingOptimizersMixin) or pass `resume=\"recipe\"` to"
        " ConfigureOptimizersCheck/SchedulerCadenceCheck; to resume exactly as saved, undo the changes." + silence
    )


def dropped_message(source: str, index: int, reason: str, setup: OptimizerSetup) -> str:
    name = type(getattr(setup.optimizers[index], "_optimizer", setup.optimizers[index])).__name__
    return (
        f"Resuming from {source} with resume='recipe': optimizer {index} ({name})'s state in the checkpoint (its"
        f" moments and step count) is dropped, because {reason}. It starts from a fresh state, as a new optimizer"
        " would; the weights, global_step and the schedules' positions are kept. To keep the state, keep the"
        " optimizer's class and param groups. Silence this with"
        " `warnings.filterwarnings('ignore', \".*optimizer .* state in the checkpoint\")`."
    )

