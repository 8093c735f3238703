"""Property-based tests: random nested structures fed to `validate_optimizers`, `param_groups` and `scheduled` either
validate or raise `RecipeError` with a message; never another exception type, never a hang."""

from __future__ import annotations

import contextlib
import signal
import warnings
from collections.abc import Iterator

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from strategies import configure_optimizers_values, param_groups_arguments, scheduled_arguments

from lightning_optim_recipes import OptimizerSetup, RecipeError, RecipeWarning, param_groups, scheduled, validate_optimizers

FUZZ = settings(max_examples=200, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextlib.contextmanager
def recipe_error_or_nothing(seconds: int = 5) -> Iterator[list[RecipeError]]:
    """Let only `RecipeError` (with a message) through, and fail instead of hanging longer than `seconds`."""

    def hang(signum, frame):
        raise TimeoutError(f"no answer after {seconds} s")

    raised: list[RecipeError] = []
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RecipeWarning)
            yield raised
    except RecipeError as err:
        assert str(err).strip(), "a RecipeError without a message"
        raised.append(err)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@FUZZ
@given(drawn=configure_optimizers_values())
def test_validate_optimizers_validates_or_raises_recipe_error(drawn):
    pool, value = drawn
    for module in (None, pool.module):
        with recipe_error_or_nothing():
            setup = validate_optimizers(value, module=module)
            assert isinstance(setup, OptimizerSetup)
            setup.lightning_value()
            setup.lightning_value(manual=True)


@FUZZ
@given(drawn=param_groups_arguments())
def test_param_groups_validates_or_raises_recipe_error(drawn):
    module, kwargs = drawn
    with recipe_error_or_nothing():
        groups = param_groups(module, **kwargs)
        assert all(group["params"] for group in groups)
        ids = [id(p) for group in groups for p in group["params"]]
        assert len(ids) == len(set(ids))


@FUZZ
@given(drawn=scheduled_arguments())
def test_scheduled_validates_or_raises_recipe_error(drawn):
    scheduler, kwargs = drawn
    with recipe_error_or_nothing():
        config = scheduled(scheduler, **kwargs)
        assert config["interval"] in ("step", "epoch") and config["frequency"] >= 1


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
