"""Property-based tests: random nested structures fed to `validate_optimizers`, `param_groups` and `scheduled` either
validate or raise `RecipeError` with a message; never another exception type, never a hang. Only the call under test
may raise `RecipeError`, and a good share of the inputs must validate."""

from __future__ import annotations

import signal
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from strategies import configure_optimizers_values, param_groups_arguments, scheduled_arguments

from lightning_optim_recipes import OptimizerSetup, RecipeError, RecipeWarning, param_groups, scheduled, validate_optimizers

FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def recipe_error_or_result(call: Callable[..., Any], *args: Any, seconds: int = 5, **kwargs: Any) -> Any:
    """`call(*args, **kwargs)`, or None when that call (and only it) raises `RecipeError` with a message.

    Any other exception fails the example, and so does a call that takes longer than `seconds`. What the test does
    with the result (the assertions, `lightning_value`) runs outside, so a `RecipeError` there fails the example too.
    """

    def hang(signum, frame):
        raise TimeoutError(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecipeWarning)
            return call(*args, **kwargs)
    except RecipeError as err:
        assert str(err).strip(), "a RecipeError without a message"
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_share_validates(outcomes: Counter, least: float) -> None:
    """At least `least` of the generated inputs validate, per kind of call: a validator that rejects everything (or
    a strategy that only draws garbage) fails here, though every example passes its own checks."""
    for kind in sorted({kind for kind, _ in outcomes}):
        validated, raised = outcomes[kind, "validated"], outcomes[kind, "raised"]
        share = validated / (validated + raised)
        assert share >= least, f"{kind}: {validated} of {validated + raised} validated ({share:.0%} < {least:.0%})"


def test_validate_optimizers_validates_or_raises_recipe_error():
    outcomes: Counter = Counter()

    @FUZZ
    @given(drawn=configure_optimizers_values())
    def check(drawn):
        pool, value = drawn
        for module in (None, pool.module):
            kind = "without a module" if module is None else "with the module"
            setup = recipe_error_or_result(validate_optimizers, value, module=module)
            outcomes[kind, "raised" if setup is None else "validated"] += 1
            if setup is not None:
                assert isinstance(setup, OptimizerSetup)
                setup.lightning_value()
                setup.lightning_value(manual=True)

    check()
    # 30-58% validated in each case, over 30 runs of 200 examples
    assert_share_validates(outcomes, least=0.1)


def test_param_groups_validates_or_raises_recipe_error():
    outcomes: Counter = Counter()

    @FUZZ
    @given(drawn=param_groups_arguments())
    def check(drawn):
        module, kwargs = drawn
        groups = recipe_error_or_result(param_groups, module, **kwargs)
        outcomes["param_groups", "raised" if groups is None else "validated"] += 1
        if groups is not None:
            assert all(group["params"] for group in groups)
            ids = [id(p) for group in groups for p in group["params"]]
            assert len(ids) == len(set(ids))

    check()
    # most arguments are drawn invalid on purpose: 11-37% validated, over 40 runs of 200 examples
    assert_share_validates(outcomes, least=0.04)


def test_scheduled_validates_or_raises_recipe_error():
    outcomes: Counter = Counter()

    @FUZZ
    @given(drawn=scheduled_arguments())
    def check(drawn):
        scheduler, kwargs = drawn
        config = recipe_error_or_result(scheduled, scheduler, **kwargs)
        outcomes["scheduled", "raised" if config is None else "validated"] += 1
        if config is not None:
            assert config["interval"] in ("step", "epoch") and config["frequency"] >= 1

    check()
    # most arguments are drawn invalid on purpose: 13-40% validated, over 60 runs of 200 examples
    assert_share_validates(outcomes, least=0.05)


# ----------------------------------------------------------------------- inputs the fuzzing found, kept as cases

_P = torch.nn.Parameter(torch.zeros(2, 2))
_OPT = torch.optim.SGD([_P], lr=0.1)
_STEP = torch.optim.lr_scheduler.StepLR(_OPT, 1)
_PLATEAU = torch.optim.lr_scheduler.ReduceLROnPlateau(_OPT)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: validate_optimizers({"optimizer": _OPT, "lr_scheduler": {"scheduler": _STEP, "strict": _P}}),
         r"^'strict' of the StepLR dict must be True or False, got Parameter containing"),
        (lambda: validate_optimizers({"optimizer": _OPT, "lr_scheduler": {"scheduler": _STEP, "reduce_on_plateau": "no"}}),
         r"^'reduce_on_plateau' of the StepLR dict must be True or False, got 'no'\.$"),
        (lambda: validate_optimizers({"optimizer": _OPT, "lr_scheduler": {"scheduler": _PLATEAU, "monitor": _P}}),
         r"^'monitor' of the ReduceLROnPlateau must be the name of a metric you log, e.g. 'val_loss', got Parameter"),
        (lambda: validate_optimizers({"optimizer": _OPT, "lr_scheduler": _PLATEAU, "monitor": 5}),
         r"^'monitor' of the ReduceLROnPlateau must be the name of a metric you log, e.g. 'val_loss', got 5\.$"),
        (lambda: scheduled(_PLATEAU, monitor="val_loss", strict=_P),
         r"^`strict` must be True or False, got Parameter containing"),
        (lambda: param_groups(torch.nn.Linear(2, 2), weight_decay=float("nan")),
         r"^`weight_decay` must be a finite non-negative number, got nan\.$"),
        (lambda: param_groups(torch.nn.Linear(2, 2), weight_decay=0.1, lr=float("inf")),
         r"^`lr` must be a finite non-negative number, got inf\.$"),
        (lambda: param_groups(torch.nn.Linear(2, 2), weight_decay=0.1, overrides={"*": {"lr": "x"}}),
         r"^`overrides\['\*'\]\['lr'\]` must be a finite non-negative number, got 'x'\.$"),
    ],
)
def test_inputs_found_by_fuzzing(call, message):
    with pytest.raises(RecipeError, match=message):
        call()
