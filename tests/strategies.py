"""Hypothesis strategies for the property-based tests: random (nested) user structures around real torch objects.

Each example draws a fresh `Pool`: a tiny model, optimizers over (some of) its parameters and schedulers bound to
them or to a foreign optimizer, so that structures built from the pool reach the validators' deep checks (binding,
disjointness, cadence) as well as their type checks.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from hypothesis import strategies as st
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lightning_optim_recipes import DEFAULT_NO_DECAY, NoDecayRule

OPTIMIZER_KEYS = ["optimizer", "lr_scheduler", "monitor", "frequency"]
SCHEDULER_KEYS = ["scheduler", "name", "interval", "frequency", "reduce_on_plateau", "monitor", "strict"]
TYPO_KEYS = ["lr_schedular", "optimiser", "sheduler", "params", "encoder_params", "intervall", "freq", "Monitor", ""]
SCHEDULER_KINDS = ["StepLR", "ExponentialLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR", "LambdaLR",
                   "ReduceLROnPlateau"]
WORDS = ["step", "epoch", "batch", "steps", "epochs", "val_loss", "lr", "AdamW", "encoder", "decoder.*", "*", "0", ""]


@dataclasses.dataclass
class Pool:
    """The torch objects one example is built from."""

    module: nn.Module
    optimizers: list[torch.optim.Optimizer]
    schedulers: list[Any]


def _model() -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2), nn.Linear(2, 2), nn.Embedding(3, 2))
    model[2].weight = model[0].weight  # tied
    return model


def _scheduler(kind: str, optimizer: torch.optim.Optimizer) -> Any:
    sched = torch.optim.lr_scheduler
    return {
        "StepLR": lambda: sched.StepLR(optimizer, 2),
        "ExponentialLR": lambda: sched.ExponentialLR(optimizer, 0.9),
        "MultiStepLR": lambda: sched.MultiStepLR(optimizer, [2, 50]),
        "CosineAnnealingLR": lambda: sched.CosineAnnealingLR(optimizer, 100),
        "LinearLR": lambda: sched.LinearLR(optimizer, total_iters=3),
        "OneCycleLR": lambda: sched.OneCycleLR(optimizer, max_lr=0.1, total_steps=10, cycle_momentum=False),
        "LambdaLR": lambda: sched.LambdaLR(optimizer, lambda step: 1.0),
        "ReduceLROnPlateau": lambda: sched.ReduceLROnPlateau(optimizer),
    }[kind]()


@st.composite
def pools(draw: st.DrawFn) -> Pool:
    """A tiny model, 1-3 optimizers over its parameters (whole, split, grouped, overlapping) and schedulers."""
    module = _model()
    params = list(module.parameters())
    optimizers = []
    for _ in range(draw(st.integers(1, 3))):
        cls = draw(st.sampled_from([torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW]))
        layout = draw(st.sampled_from(["all", "slice", "groups", "last"]))
        if layout == "all":
            optimizers.append(cls(params, lr=0.1))
        elif layout == "slice":
            start = draw(st.integers(0, len(params) - 1))
            optimizers.append(cls(params[start : start + 2], lr=0.1))
        elif layout == "groups":
            optimizers.append(cls([{"params": params[:2], "lr": 0.01}, {"params": params[2:]}], lr=0.1))
        else:
            optimizers.append(cls(params[-1:], lr=0.1))
    foreign = torch.optim.SGD([nn.Parameter(torch.zeros(2, 2))], lr=0.1)
    schedulers = [
        _scheduler(draw(st.sampled_from(SCHEDULER_KINDS)), draw(st.sampled_from(optimizers + [foreign])))
        for _ in range(draw(st.integers(0, 3)))
    ]
    if draw(st.booleans()):
        module.automatic_optimization = False  # type: ignore[assignment]
    return Pool(module, optimizers, schedulers)


def scalars() -> st.SearchStrategy[Any]:
    """Numbers (NaN and infinities included), strings, booleans and None."""
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 10),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(WORDS),
        st.text(max_size=6),
    )


def keys() -> st.SearchStrategy[Any]:
    """Dict keys: the valid ones of Lightning's dicts, near misses, other strings, numbers and None."""
    return st.one_of(
        st.sampled_from(OPTIMIZER_KEYS + SCHEDULER_KEYS),
        st.sampled_from(TYPO_KEYS),
        st.text(max_size=5),
        st.integers(-2, 2),
        st.none(),
    )


def structures(pool: Pool, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Random nested lists, tuples and dicts of the pool's optimizers and schedulers, tensors and scalars."""
    leaves = st.one_of(
        scalars(),
        st.sampled_from(pool.optimizers),
        st.sampled_from(pool.schedulers) if pool.schedulers else st.nothing(),
        st.sampled_from(list(pool.module.parameters())),
        st.just(pool.module),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(keys(), children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def scheduler_entries(draw: st.DrawFn, pool: Pool) -> Any:
    """A bare scheduler, or a scheduler dict whose keys and values are each valid or not."""
    junk = structures(pool, max_leaves=3)
    scheduler = draw(st.sampled_from(pool.schedulers) if pool.schedulers and draw(st.booleans()) else junk)
    if draw(st.booleans()):
        return scheduler
    entry: dict[Any, Any] = {} if draw(st.integers(0, 9)) == 0 else {"scheduler": scheduler}
    for key in draw(st.lists(st.sampled_from(SCHEDULER_KEYS[1:] + TYPO_KEYS), max_size=3, unique=True)):
        valid = {
            "name": st.sampled_from(["lr", "lr-adam"]),
            "interval": st.sampled_from(["step", "epoch"]),
            "frequency": st.integers(1, 3),
            "reduce_on_plateau": st.booleans(),
            "monitor": st.sampled_from(["val_loss", "train_loss"]),
            "strict": st.booleans(),
        }.get(key, junk)
        entry[key] = draw(st.one_of(valid, junk) if draw(st.booleans()) else valid)
    return entry


@st.composite
def optimizer_dicts(draw: st.DrawFn, pool: Pool) -> dict[Any, Any]:
    """{'optimizer', 'lr_scheduler', 'monitor', 'frequency'} with each key present or not, valid or not."""
    junk = structures(pool, max_leaves=3)
    config: dict[Any, Any] = {}
    if draw(st.integers(0, 9)):
        config["optimizer"] = draw(st.sampled_from(pool.optimizers) if draw(st.integers(0, 5)) else junk)
    if draw(st.booleans()):
        config["lr_scheduler"] = draw(scheduler_entries(pool))
    if draw(st.integers(0, 3)) == 0:
        config["monitor"] = draw(st.one_of(st.just("val_loss"), junk))
    if draw(st.integers(0, 2)) == 0:
        config["frequency"] = draw(st.one_of(st.integers(1, 5), junk))
    if draw(st.integers(0, 5)) == 0:
        config[draw(st.sampled_from(TYPO_KEYS))] = draw(junk)
    return config


@st.composite
def configure_optimizers_values(draw: st.DrawFn) -> tuple[Pool, Any]:
    """(pool, value): a value shaped like one of Lightning's documented forms (mutated), or any random structure."""
    pool = draw(pools())
    optimizers = st.sampled_from(pool.optimizers)
    junk = structures(pool)
    forms = st.one_of(
        optimizers,
        st.lists(st.one_of(optimizers, junk) if draw(st.booleans()) else optimizers, max_size=3),
        st.tuples(
            st.lists(optimizers, min_size=1, max_size=3),
            st.one_of(st.lists(scheduler_entries(pool), max_size=3), scheduler_entries(pool)),
        ),
        optimizer_dicts(pool),
        st.lists(optimizer_dicts(pool), min_size=1, max_size=3),
        st.lists(optimizer_dicts(pool), min_size=1, max_size=3).map(tuple),
        st.none(),
        junk,
    )
    return pool, draw(forms)


@st.composite
def param_groups_arguments(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """(module, keyword arguments of `param_groups`), each argument valid or not."""
    module = _model()
    if draw(st.integers(0, 4)) == 0:
        module[1].requires_grad_(False)
    if draw(st.integers(0, 19)) == 0:
        module = draw(scalars())
    junk = st.one_of(scalars(), st.lists(scalars(), max_size=3), st.dictionaries(keys(), scalars(), max_size=3))
    numbers = st.floats(0, 1) | st.integers(0, 3)
    kwargs: dict[str, Any] = {"weight_decay": draw(numbers if draw(st.booleans()) else junk)}
    if draw(st.booleans()):
        kwargs["lr"] = draw(st.one_of(st.none(), numbers, junk))
    if draw(st.booleans()):
        patterns = st.one_of(st.sampled_from(["0", "1", "2", "3", "*", "[0-1]", "0.weight", "?", "**", "missing"]), keys())
        options = st.dictionaries(
            st.one_of(st.sampled_from(["lr", "weight_decay", "betas", "momentum", "params", "name"]), keys()),
            st.one_of(numbers, junk),
            max_size=3,
        )
        kwargs["overrides"] = draw(st.one_of(st.dictionaries(patterns, st.one_of(options, junk), max_size=3), junk))
    if draw(st.booleans()):
        kwargs["no_decay"] = draw(
            st.one_of(
                st.sampled_from([DEFAULT_NO_DECAY, None, NoDecayRule(bias=False), NoDecayRule(names=("0.*",))]),
                st.just(DEFAULT_NO_DECAY.extend(module_types=(nn.Embedding,))),
                junk,
            )
        )
    if draw(st.integers(0, 3)) == 0:
        kwargs["include_frozen"] = draw(st.booleans())
    return module, kwargs


@st.composite
def scheduled_arguments(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """(scheduler, keyword arguments of `scheduled`), each valid or not."""
    pool = draw(pools())
    junk = structures(pool, max_leaves=4)
    # a real scheduler 4 times in 5 (a new one over the pool's optimizers when the pool has none), so that most
    # examples get past the scheduler's own check to the keyword arguments'
    schedulers = st.sampled_from(pool.schedulers) if pool.schedulers else st.builds(
        _scheduler, st.sampled_from(SCHEDULER_KINDS), st.sampled_from(pool.optimizers))
    scheduler = draw(schedulers if draw(st.integers(0, 4)) else junk)
    valid = {
        "interval": st.sampled_from(["step", "epoch"]),
        "frequency": st.integers(1, 5),
        # only a ReduceLROnPlateau reads a metric (junk draws the other pairings too)
        "monitor": st.just("val_loss") if isinstance(scheduler, ReduceLROnPlateau) else st.none(),
        "name": st.sampled_from([None, "lr"]),
        "strict": st.booleans(),
    }
    kwargs = {}
    for key, strategy in valid.items():
        choice = draw(st.integers(0, 3))
        if choice == 1:
            kwargs[key] = draw(strategy)
        elif choice >= 2:
            kwargs[key] = draw(st.one_of(strategy, junk))
    return scheduler, kwargs


