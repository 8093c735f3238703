"""Resume with a changed recipe: say what the checkpoint overrides, and let the new schedule continue where training
stands.

A user trains, stops, edits the learning rate or the schedule (most often to train longer) and resumes with
``Trainer.fit(..., ckpt_path=...)``. Lightning then restores each optimizer's ``state_dict`` (its param groups' ``lr``,
``initial_lr``, ``weight_decay``, ``betas`` ... included) and each scheduler's ``state_dict`` (``milestones``,
``T_max``, ``total_steps``, ``base_lrs`` ...) over what ``configure_optimizers`` has just built: most edits are
silently ignored, and a ``LambdaLR``'s edit is silently applied (its function is not saved, so the new function runs
on the old counter, with the old base lrs). This module compares what was built with what the checkpoint restores,
warns with a table of every difference, and with ``resume="recipe"`` makes the new recipe apply from where training
stands (the table then is logged at INFO on the library's logger, not warned: the new recipe was chosen).

**When it runs.** Lightning's order in ``fit`` (default strategies, both namespaces) is: load the checkpoint file;
the module's and the callbacks' ``on_load_checkpoint``/``load_state_dict`` (the alternating mixin's state comes back
here); ``strategy.setup``, which calls ``configure_optimizers``; ``on_fit_start``; ``restore_training_state`` (loops,
then ``optimizer.load_state_dict`` and ``scheduler.load_state_dict`` from the checkpoint dict); ``on_train_start``.
So when ``configure_optimizers`` returns, both sides are known: the new optimizers and the loaded checkpoint dict
(``trainer._checkpoint_connector._loaded_checkpoint``, the dict the ``on_load_checkpoint`` hooks receive), and
nothing has been restored yet. The library's entry points all pass there: `OptimRecipeMixin` and
`AlternatingOptimizersMixin` (``finish_optimizer_setup``), and `ConfigureOptimizersCheck`/`SchedulerCadenceCheck`
(their wrapped ``configure_optimizers``). They call `on_configured`, which compares and, for ``"recipe"``, *edits the
checkpoint dict* before Lightning reads it: Lightning itself then restores exactly the moments and counters to keep
and the new recipe's hyper-parameters. Nothing is re-applied afterwards and no Lightning code is patched. Strategies
that restore checkpoints after their own setup (`ModelParallelStrategy` for FSDP2, whose checkpoint is a directory of
shards; `FSDPStrategy`, DeepSpeed) load it only after ``configure_optimizers``, the optimizers' states straight into
the optimizers: there the entry points defer (`lightning_optim_recipes.resume.deferred`): a small callback added for
the fit reconciles in ``on_load_checkpoint``, once the strategy has loaded, with the same `reconcile`.

**What is compared** (one table row per difference; columns ``what | checkpoint | new recipe | training uses``):
the number of optimizers; per optimizer its class, its param-group layout (groups, parameters per group, their
shapes) and per group ``lr`` (the lr at the resume step: the checkpoint's, and the new schedule's at that step),
``initial_lr``, ``weight_decay``, ``betas``/``momentum``, ``eps`` and every other option (implementation switches
such as ``foreach`` are left out); per scheduler its class, its hyper-parameters (``milestones``, ``gamma``,
``T_max``, ``eta_min``, ``total_steps``, ``warmup_steps``, ... : its ``state_dict`` less the counters), its cadence
(``interval``, ``frequency``, optimizer) and the step it resumes at. A checkpoint does not say an optimizer's or a
scheduler's class, nor a scheduler's cadence: the entry points record them in every optimizer's ``state_dict`` (a
``"lightning_optim_recipes"`` entry that ``torch`` ignores when loading), so checkpoints written by a run that used
the library have them; for older ones those rows are left out. No difference: no warning.

**The two choices** (``resume`` on the mixins, a class attribute like their other options; ``resume=`` on the
checking callbacks for modules without a mixin):

* ``"checkpoint"`` (default): Lightning's behaviour, unchanged. The table says what training uses. A change that
  Lightning cannot load (another param-group layout: torch refuses it, or parameters of other shapes) is a
  `RecipeError` before training, naming ``resume="recipe"`` as the fix.
* ``"recipe"``: keep the weights, the loops (``global_step``, epoch, the alternation state) and each optimizer's
  state (its moments and step count), but train with the new recipe's hyper-parameters, every new scheduler placed
  at the position training has reached. A different param layout or optimizer class drops that optimizer's state
  (a `RecipeWarning` says so). A ``ReduceLROnPlateau`` follows metrics, not steps: it keeps its counters and its
  groups' lr from the checkpoint and takes its options from the recipe.

**Placing a scheduler** (`place_scheduler`): the new scheduler is stepped from its start to the position, without
optimizer steps; the lr at every later step is then the new schedule's at that step, as if it had been the schedule
from the start (for the recursive torch forms, bit for bit what training would have computed). A ``LambdaLR``
(`warmup_cosine`, `lightning_optim_recipes.schedules`) jumps there: its lr is a function of its counter. Stepping is
general (every ``torch.optim.lr_scheduler`` class that steps without a metric) and costs about 3 µs a step. The
*position* of scheduler ``k`` is the step count of the checkpoint's scheduler ``k`` (its ``last_epoch``: under the
alternating mixin it counts its own optimizer's turns) when its cadence is unchanged. When the cadence changed
(``'step'`` <-> ``'epoch'``, another frequency or optimizer), or the recipe has a scheduler the checkpoint lacks, the
position is what the cadence model (`lightning_optim_recipes.cadence`) says that scheduler would have stepped over
the batches trained so far: its steps in its own unit, the new schedule as if from the start. Several schedulers on
one optimizer are stepped in the order training steps them, by the same replay. `SchedulerCadenceCheck` takes the
new positions as the run's counts so far.

**Cooldowns and finished schedules.** A scheduler that starts its decay where training resumes
(``warmup_stable_decay(decay_start="now")``, `cooldown`) is anchored at its position when it is placed, or at the
start saved in the checkpoint when its cooldown had already started there (without the library's entry points, the
scheduler anchors itself the same way when Lightning loads its state). A scheduler whose checkpoint schedule had
ended (a cosine at its floor), resumed into a longer run, is stretched under
``"recipe"`` (a note says so), held at its last lr with the module's ``extend_schedule = "hold"``, and under
``"checkpoint"`` without it is a `RecipeError` naming the choice (`resume.extend`). A warmup-stable-decay schedule
that holds its floor to the end of its run (``decay_start="25%"``) ends with its run, not with its decay.

**Previews** (`preview_schedule(..., resume_from=ResumeFrom(old, step=..., max_epochs=...))`): the old module or
recipe is previewed up to ``step``, its state is turned into a checkpoint dict as Lightning would save it, the new
one is configured, passed through the same `reconcile`, restored as Lightning restores, and previewed on from there.

The package, from the bottom: `resume.state` (the choice, the record in checkpoints, the report's types: what
callbacks read), `resume.checkpoint` (reading a checkpoint dict), `resume.place` (placing schedulers),
`resume.compare` (the table), `resume.extend` (a finished schedule in a longer run), `resume.reconcile` (the
machinery the entry points call) and `resume.preview` (the resumed preview, above
`lightning_optim_recipes.trajectory`).
"""

from lightning_optim_recipes.resume.place import place_scheduler
from lightning_optim_recipes.resume.preview import ResumeFrom
from lightning_optim_recipes.resume.reconcile import on_configured, reconcile
from lightning_optim_recipes.resume.state import (
    CHOICES,
    RECORD_KEY,
    ResumeDifference,
    ResumeReport,
    check_choice,
    moved_by,
)

__all__ = [
    "CHOICES",
    "RECORD_KEY",
    "ResumeDifference",
    "ResumeFrom",
    "ResumeReport",
    "check_choice",
    "moved_by",
    "on_configured",
    "place_scheduler",
    "reconcile",
]
