"""Schedule-free recipes: an optimizer whose schedule is built in (a warm-up, then a constant lr and an average of the
iterates), so the run's length need not be known. Needs the ``schedulefree`` extra; a module under
`OptimRecipeMixin` gets `ScheduleFreeModes` with it."""

from __future__ import annotations

from lightning_optim_recipes.catalogue._examples import TinyViT
from lightning_optim_recipes.catalogue._registry import RecipeEntry, Source, register

__all__: list[str] = []  # the entries are reached by name: `get_recipe("schedulefree-adamw")`

#: The reference implementation, at the version the extra installs (its README, defaults and AlgoPerf entries).
PACKAGE = Source(
    authors="Defazio et al. (facebookresearch/schedule_free)",
    year=2025,
    title="schedulefree 1.4.1: Schedule-Free Learning in PyTorch",
    venue="https://github.com/facebookresearch/schedule_free, commit c752e61 (version 1.4.1)",
    where="README.md (How to Use, Caveats); schedulefree/adamw_schedulefree.py (AdamWScheduleFree's docstring and"
          " step); schedulefree/algoperf/external_tuning/schedule_free_adamw (submission.py, tuning_search_space.json)",
)

SCHEDULEFREE_ADAMW = register(RecipeEntry(
    name="schedulefree-adamw",
    summary="Schedule-free AdamW: lr 0.0025, betas (0.9, 0.999), no scheduler: a built-in warm-up over 2% of the run,"
            " then the iterates averaged",
    source=Source(
        authors="Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky",
        year=2024,
        title="The Road Less Scheduled",
        venue="NeurIPS 2024 (arXiv:2405.15682)",
        where="Abstract; the numbers are those of its reference implementation, the schedulefree package (see also)",
    ),
    also=(PACKAGE,),
    recipe={
        "optimizer": "AdamWScheduleFree",
        "lr": 0.0025,
        "weight_decay": 0.0,
        "optimizer_kwargs": {"betas": [0.9, 0.999], "eps": 1e-8, "r": 0.0, "weight_lr_power": 2.0},
        "warmup_fraction": 0.02,
    },
    numbers=(
        ("Schedule-free AdamW, no hyper-parameter beyond AdamW's", "the paper's Abstract",
         "Our Schedule-Free approach introduces no additional hyper-parameters over standard optimizers with"
         " momentum. [...] Schedule-Free AdamW is the core algorithm behind our winning entry to the MLCommons 2024"
         " AlgoPerf Algorithmic Efficiency Challenge Self-Tuning track."),
        ("lr 0.0025", "adamw_schedulefree.py, AdamWScheduleFree's docstring", "lr (float): Learning rate parameter"
         " (default 0.0025)"),
        ("betas (0.9, 0.999)", "adamw_schedulefree.py, AdamWScheduleFree's docstring",
         "betas (Tuple[float, float], optional): coefficients used for computing running averages of gradient and"
         " its square (default: (0.9, 0.999))."),
        ("beta1 0.9 (the interpolation between the average and the iterate)", "README.md, Caveats",
         "Our default of $0.9$ works on most problems but it may be necessary to increase the value to $0.95$ or"
         " $0.98$ particularly for very long training runs."),
        ("eps 1e-8, weight decay 0", "adamw_schedulefree.py, AdamWScheduleFree's docstring",
         "eps (float): Term added to the denominator outside of the root operation to improve numerical stability."
         " (default: 1e-8). weight_decay (float): Weight decay, i.e. a L2 penalty (default: 0)."),
        ("the average weighted by lr^2 (weight_lr_power 2), no polynomial weighting (r 0)",
         "adamw_schedulefree.py, AdamWScheduleFree's docstring",
         "r (float): Use polynomial weighting in the average with power r (default 0). weight_lr_power (float):"
         " During warmup, the weights in the average will be equal to lr raised to this power. Set to 0 for no"
         " weighting (default 2.0)."),
        ("no scheduler; a warm-up through the optimizer's warmup_steps", "README.md, Caveats",
         "There is no need to use a learning rate scheduler, however the code is compatible with one. Using learning"
         " rate warmup is recommended. This is supported through the `warmup_steps` parameter."),
        ("the warm-up over 2% of the run (warmup_fraction 0.02: warmup_steps = round(0.02 x the run's optimizer"
         " steps))", "algoperf/external_tuning/schedule_free_adamw: tuning_search_space.json, submission.py:140",
         "\"warmup_factor\": 0.02 (in each of its five points); warmup_steps=int(hyperparameters.warmup_factor *"
         " workload.step_hint)"),
        ("train mode to train; eval mode to evaluate and to save", "README.md, How to Use",
         "This is done by calling `optimizer.train()` at the same place you call `model.train()` and"
         " `optimizer.eval()` at the same place you call `model.eval()`. The optimizer should also be placed in eval"
         " mode when storing checkpoints."),
    ),
    choices=(
        "The warm-up's length: the package recommends one but gives no number; the AlgoPerf external-tuning entry"
        " warms up over `warmup_factor` 0.02 times the workload's `step_hint`, taken here as 2% of the run's"
        " optimizer steps. It is the only number here that reads the run's length; a warm-up in steps instead:"
        " get_recipe('schedulefree-adamw', warmup_fraction=None, optimizer_kwargs={'warmup_steps': 1000}).",
        "Warm-up start: schedulefree runs its step k at (k + 1) / warmup_steps of the lr (adamw_schedulefree.py:131"
        " `sched = (k+1) / warmup_steps`), this library's own convention: the first step at 1/W of the peak, the"
        " peak from step W - 1 on.",
        "Weight decay 0, the package's default. The AlgoPerf entries use 0.08 (\"weight_decay\": 0.08 in every point"
        " of tuning_search_space.json): get_recipe('schedulefree-adamw', weight_decay=0.08). With a decay, the"
        " library's default rule exempts biases and norm layers; the package itself decays whatever its groups"
        " hold.",
        "lr: the package's default; its README's Caveats: \"For AdamW, learning rates in the range 1x-10x larger than"
        " with schedule-based approaches seem to work.\"",
        "Train and eval modes at every boundary (validation, test, predict, checkpoints, the end of fit):"
        " `ScheduleFreeModes`, which OptimRecipeMixin adds for this recipe. With BatchNorm, the README's Caveats"
        " forward training batches at the evaluation weights before evaluating (`itertools.islice(train_loader,"
        " 50)`): `bn_recompute_batches = 50` on the mixin.",
    ),
    notes=(
        "The AlgoPerf self-tuning entry the Abstract names used an early version of the optimizer with its own"
        " settings (algoperf/self_tuning/schedule_free_adamw/submission.py: \"learning_rate\": 0.0025,"
        " \"one_minus_beta1\": 0.1, \"beta2\": 0.9955159689799007, \"weight_decay\": 0.08121616522670176,"
        " \"warmup_factor\": 0.02, \"r\": 0.75, its warm-up over 0.02 x 0.75 of the step_hint).",
        "No scheduler: a scheduler on a schedule-free optimizer changes the lr its average is weighted by, and the"
        " library warns (RecipeWarning) when one is attached.",
    ),
    preview={"max_epochs": 10, "steps_per_epoch": 100},
    module=TinyViT,
))
