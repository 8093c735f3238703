"""`validate_optimizers`: every documented `configure_optimizers` form, normalized; every mistake, with its message."""

from __future__ import annotations

import warnings

import pytest
import torch
from helpers import pl
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau, StepLR

from lightning_optim_recipes import (
    OptimizerSetup,
    RecipeError,
    RecipeWarning,
    SchedulerSpec,
    validate_optimizers,
)


class Net(pl.LightningModule):
    """Two sub-networks (no Trainer needed: validation reads the module's parameters and optimization mode)."""

    def __init__(self, automatic: bool = True) -> None:
        super().__init__()
        self.gen = nn.Linear(2, 2)
        self.disc = nn.Linear(2, 1)
        self.automatic_optimization = automatic


@pytest.fixture
def net():
    return Net()


def _opts(net):
    return torch.optim.SGD(net.gen.parameters(), lr=0.1), torch.optim.Adam(net.disc.parameters(), lr=0.01)


# ------------------------------------------------------------------------------------------- accepted forms


def test_none():
    assert validate_optimizers(None) == OptimizerSetup(optimizers=(), schedulers=(), frequencies=None)


def test_single_optimizer(net):
    opt = torch.optim.Adam(net.parameters())
    assert validate_optimizers(opt, net) == OptimizerSetup(optimizers=(opt,), schedulers=(), frequencies=None)


@pytest.mark.parametrize("container", [list, tuple])
def test_list_or_tuple_of_optimizers(net, container):
    a, b = _opts(net)
    assert validate_optimizers(container([a, b])) == OptimizerSetup(optimizers=(a, b))
    assert validate_optimizers(container([a])) == OptimizerSetup(optimizers=(a,))


def test_optimizers_and_bare_schedulers(net):
    a, b = _opts(net)
    sa, sb = StepLR(a, 2), StepLR(b, 3)
    assert validate_optimizers(([a, b], [sb, sa])) == OptimizerSetup(
        optimizers=(a, b),
        schedulers=(SchedulerSpec(sb, optimizer_index=1), SchedulerSpec(sa, optimizer_index=0)),
    )
    assert validate_optimizers([[a], sa]) == OptimizerSetup((a,), (SchedulerSpec(sa, 0),))  # one scheduler, not listed


def test_optimizers_and_scheduler_dicts(net):
    a, b = _opts(net)
    sa, sb = StepLR(a, 2), ReduceLROnPlateau(b)
    value = (
        [a, b],
        [
            {"scheduler": sa, "interval": "step", "frequency": 3, "name": "lr-gen"},
            {"scheduler": sb, "monitor": "val_loss", "strict": False},
        ],
    )
    assert validate_optimizers(value) == OptimizerSetup(
        optimizers=(a, b),
        schedulers=(
            SchedulerSpec(sa, 0, interval="step", frequency=3, name="lr-gen"),
            SchedulerSpec(sb, 1, interval="epoch", frequency=1, monitor="val_loss", strict=False, reduce_on_plateau=True),
        ),
    )


def test_optimizer_dict_with_monitor(net):
    opt = torch.optim.Adam(net.parameters())
    plateau = ReduceLROnPlateau(opt)
    assert validate_optimizers({"optimizer": opt, "lr_scheduler": plateau, "monitor": "val_loss"}, net) == OptimizerSetup(
        optimizers=(opt,), schedulers=(SchedulerSpec(plateau, 0, monitor="val_loss", reduce_on_plateau=True),)
    )
    step = StepLR(opt, 1)
    setup = validate_optimizers({"optimizer": opt, "lr_scheduler": {"scheduler": step, "interval": "step"}}, net)
    assert setup == OptimizerSetup((opt,), (SchedulerSpec(step, 0, interval="step"),))
    assert validate_optimizers({"optimizer": opt}, net) == OptimizerSetup((opt,))


@pytest.mark.parametrize("container", [list, tuple])
def test_list_of_optimizer_dicts(net, container):
    a, b = _opts(net)
    sa, sb = StepLR(a, 2), StepLR(b, 2)
    without = container([{"optimizer": a, "lr_scheduler": sa}, {"optimizer": b, "lr_scheduler": {"scheduler": sb, "interval": "step"}}])
    assert validate_optimizers(without) == OptimizerSetup(
        optimizers=(a, b), schedulers=(SchedulerSpec(sa, 0), SchedulerSpec(sb, 1, interval="step")), frequencies=None
    )
    with_freq = container([{"optimizer": a, "frequency": 5}, {"optimizer": b, "frequency": 1, "lr_scheduler": sb}])
    assert validate_optimizers(with_freq) == OptimizerSetup(
        optimizers=(a, b), schedulers=(SchedulerSpec(sb, 1),), frequencies=(5, 1)
    )


def test_lightning_value_is_a_form_lightning_2_accepts(net):
    a, b = _opts(net)
    sa = StepLR(a, 2)
    setup = validate_optimizers([{"optimizer": a, "frequency": 5, "lr_scheduler": sa}, {"optimizer": b, "frequency": 1}])
    assert setup.lightning_value() == ([a, b], [{"scheduler": sa, "interval": "epoch", "frequency": 1}])
    assert setup.schedulers_of(0) == (SchedulerSpec(sa, 0),) and setup.schedulers_of(1) == ()
    assert validate_optimizers([a]).lightning_value() is a
    assert validate_optimizers(None).lightning_value() is None


# ------------------------------------------------------------------------------------------------ mistakes


def _errors():
    """(name, build(net) -> value, message) for every mistake validate_optimizers names, module given."""
    def one(net):
        return torch.optim.Adam(net.parameters(), lr=0.1)

    def other_sgd(net):
        return torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)

    return [
        ("unknown-key", lambda n: {"optimizer": (o := one(n)), "lr_schedular": StepLR(o, 1)},
         r"^Unknown key 'lr_schedular' in the optimizer dict returned by `configure_optimizers`: did you mean"
         r" 'lr_scheduler'\? It holds a StepLR, but Lightning ignores unknown keys \(1\.x and 2\.x alike, with only a"
         r" warning\), so that scheduler would never step\. Rename 'lr_schedular' to 'lr_scheduler' to use it, or"
         r" remove it to keep the old behaviour\. Valid keys: 'optimizer', 'lr_scheduler', 'monitor', 'frequency'\.$"),
        ("scheduler-key-1x", lambda n: [{"optimizer": (o := one(n)), "scheduler": {"scheduler": StepLR(o, 1)}}],
         r"^Unknown key 'scheduler' in optimizer dict 0 returned by `configure_optimizers`: did you mean"
         r" 'lr_scheduler'\? It holds a StepLR, but"
         r" Lightning ignores unknown keys \(1\.x and 2\.x alike, with only a warning\), so that scheduler would"
         r" never step\. Rename 'scheduler' to 'lr_scheduler' to use it, or remove it to keep the old behaviour\."),
        ("unknown-key-in-list", lambda n: [{"optimiser": one(n)}],
         r"^Unknown key 'optimiser' in optimizer dict 0 returned by `configure_optimizers`: did you mean 'optimizer'\?"),
        ("unknown-scheduler-key", lambda n: {"optimizer": (o := one(n)), "lr_scheduler": {"scheduler": StepLR(o, 1), "intervall": "step"}},
         r"^Unknown key 'intervall' in a scheduler dict: did you mean 'interval'\? Valid keys: 'scheduler', 'name',"
         r" 'interval', 'frequency', 'reduce_on_plateau', 'monitor', 'strict'\.$"),
        ("unknown-key-no-suggestion", lambda n: {"optimizer": one(n), "xyz": 1},
         r"^Unknown key 'xyz' in the optimizer dict returned by `configure_optimizers`: Valid keys:"),
        ("bad-interval", lambda n: {"optimizer": (o := one(n)), "lr_scheduler": {"scheduler": StepLR(o, 1), "interval": "batch"}},
         r"^'interval' of the StepLR dict must be 'step' or 'epoch', got 'batch'\. Use 'step' for a per-batch schedule\.$"),
        ("bad-interval-list", lambda n: ([o := one(n)], [{"scheduler": StepLR(o, 1), "interval": "Epoch"}]),
         r"^'interval' of the StepLR dict must be 'step' or 'epoch', got 'Epoch'\.$"),
        ("foreign-optimizer", lambda n: ([one(n)], [StepLR(other_sgd(n), 1)]),
         r"^Scheduler StepLR is bound to a SGD that `configure_optimizers` does not return\. Build the scheduler on one"
         r" of the returned optimizers \(a scheduler made before re-creating the optimizer keeps the old one\)\.$"),
        ("foreign-optimizer-dict", lambda n: {"optimizer": one(n), "lr_scheduler": StepLR(other_sgd(n), 1)},
         r"^Scheduler StepLR is bound to a SGD that `configure_optimizers` does not return\."),
        ("plateau-without-monitor", lambda n: {"optimizer": (o := one(n)), "lr_scheduler": ReduceLROnPlateau(o)},
         r"^A `ReduceLROnPlateau` scheduler needs a monitor: add the logged metric it watches, e.g\."
         r' \{"scheduler": scheduler, "monitor": "val_loss"\} \(or "monitor" beside "lr_scheduler" for a bare one\)\.$'),
        ("plateau-dict-without-monitor", lambda n: ([o := one(n)], [{"scheduler": ReduceLROnPlateau(o), "interval": "epoch"}]),
         r"^A `ReduceLROnPlateau` scheduler needs a monitor"),
        ("monitor-not-a-string", lambda n: {"optimizer": (o := one(n)), "lr_scheduler": ReduceLROnPlateau(o), "monitor": 3},
         r"^'monitor' of the ReduceLROnPlateau must be the name of a metric you log, e.g\. 'val_loss', got 3\.$"),
        ("monitor-without-scheduler", lambda n: {"optimizer": one(n), "monitor": "val_loss"},
         r"^The optimizer dict has a 'monitor' but no 'lr_scheduler' to use it: remove it\.$"),
        ("no-optimizer-key", lambda n: {"lr_scheduler": StepLR(one(n), 1)},
         r"^The optimizer dict has no 'optimizer' key \(its keys: 'lr_scheduler'\): write \{'optimizer': optimizer,"
         r" 'lr_scheduler': scheduler\}\.$"),
        ("optimizer-not-an-optimizer", lambda n: {"optimizer": "AdamW"},
         r"^'optimizer' of the optimizer dict must be a torch optimizer, got str\.$"),
        ("scheduler-list-in-dict", lambda n: {"optimizer": (o := one(n)), "lr_scheduler": [StepLR(o, 1)]},
         r"^'lr_scheduler' of the optimizer dict holds a list: it takes one scheduler or scheduler dict\. For several,"
         r" return \(\[optimizers\], \[schedulers\]\)\.$"),
        ("scheduler-dict-without-scheduler", lambda n: ([one(n)], [{"interval": "step"}]),
         r"^A scheduler dict has no 'scheduler' key \(its keys: 'interval'\): write \{'scheduler': scheduler,"
         r" 'interval': 'step'\}\.$"),
        ("not-a-scheduler", lambda n: ([one(n)], ["cosine"]),
         r"^Expected an lr scheduler \(e\.g\. `StepLR\(optimizer, 10\)`\) or a scheduler dict, got str: 'cosine'\.$"),
        ("empty-sequence", lambda n: [],
         r"^`configure_optimizers` returned an empty sequence\. Return an optimizer, or None to train without one\.$"),
        ("unknown-form", lambda n: "adam",
         r"^`configure_optimizers` returned a str that is not a known configuration: 'adam'\. Return one of:\n \* `Optimizer`\n"),
        ("scheduler-among-optimizers", lambda n: [o := one(n), StepLR(o, 1)],
         r"^Item 1 of the list of optimizers is a StepLR, not an optimizer: .*\. Build the scheduler list separately:"
         r" \(\[optimizers\], \[schedulers\]\)\.$"),
        ("frequency-zero", lambda n: [{"optimizer": _opts(n)[0], "frequency": 0}],
         r"^'frequency' of optimizer dict 0 must be a positive int \(1 = every interval\), got 0\.$"),
        ("frequency-float", lambda n: [{"optimizer": (ab := _opts(n))[0], "frequency": 5}, {"optimizer": ab[1], "frequency": 1.0}],
         r"^'frequency' of optimizer dict 1 must be a positive int \(1 = every interval\), got 1\.0\.$"),
        ("frequency-some", lambda n: [{"optimizer": (ab := _opts(n))[0], "frequency": 5}, {"optimizer": ab[1]}],
         r"^Optimizer dicts \[1\] have no 'frequency' while others do: alternation needs a 'frequency' for every"
         r" optimizer \(e\.g\. 5 for the critic, 1 for the generator\), or none at all\.$"),
        ("scheduler-frequency", lambda n: ([o := one(n)], [{"scheduler": StepLR(o, 1), "frequency": -2}]),
         r"^'frequency' of the StepLR dict must be a positive int \(1 = every interval\), got -2\.$"),
        ("scheduler-in-wrong-dict", lambda n: [{"optimizer": (ab := _opts(n))[0]}, {"optimizer": ab[1], "lr_scheduler": StepLR(ab[0], 1)}],
         r"^The StepLR in optimizer dict 1 is bound to optimizer 0: move it to optimizer dict 0, or build it on that"
         r" dict's optimizer\.$"),
        ("several-optimizers-automatic", lambda n: list(_opts(n)),
         r"^`configure_optimizers` returned 2 optimizers, but Lightning 2\.x trains several optimizers only under manual"
         r" optimization\. Add `AlternatingOptimizersMixin` to your module's bases to alternate them as Lightning 1\.x"
         r" did, or set `self\.automatic_optimization = False` and step them yourself in `training_step`\.$"),
        ("frequency-without-mixin", lambda n: [{"optimizer": (ab := _opts(n))[0], "frequency": 5}, {"optimizer": ab[1], "frequency": 1}],
         r"^Optimizer 'frequency' \(alternating optimizers, e\.g\. WGAN n_critic\) was removed in Lightning 2\.0, which"
         r" ignores it\. Add `AlternatingOptimizersMixin` to your module's bases:"
         r" `class MyGAN\(AlternatingOptimizersMixin, LightningModule\)`\.$"),
    ]


def _with_empty_group(optimizer):
    optimizer.add_param_group({"params": [], "lr": 1.0})
    return optimizer


@pytest.mark.parametrize(("build", "error_msg"), [e[1:] for e in _errors()], ids=[e[0] for e in _errors()])
def test_errors(net, build, error_msg):
    value = build(net)
    with pytest.raises(RecipeError, match=error_msg):
        validate_optimizers(value, net)


def test_recipe_error_is_a_value_error(net):
    """`except ValueError` catches the library's own error, message and all."""
    with pytest.raises(ValueError, match=r"^`configure_optimizers` returned a str that is not a known configuration:"
                       r" 'adam'\. Return one of:\n \* `Optimizer`\n") as caught:
        validate_optimizers("adam", net)
    assert type(caught.value) is RecipeError


def test_several_optimizers_pass_under_manual_optimization_or_without_a_module():
    net = Net(automatic=False)
    a, b = _opts(net)
    assert validate_optimizers([a, b], net).optimizers == (a, b)
    assert validate_optimizers([a, b]).optimizers == (a, b)


def test_several_optimizers_pass_with_the_alternating_flag():
    net = Net()
    net._alternates_optimizers = True  # what AlternatingOptimizersMixin sets
    a, b = _opts(net)
    value = [{"optimizer": a, "frequency": 5}, {"optimizer": b, "frequency": 1}]
    assert validate_optimizers(value, net).frequencies == (5, 1)


# ------------------------------------------------------------------------------------------------- warnings


def test_parameters_shared_by_two_optimizers_warn(net):
    net.automatic_optimization = False
    shared = [torch.optim.SGD(net.parameters(), lr=0.1), torch.optim.SGD(net.disc.parameters(), lr=0.1)]
    with pytest.warns(RecipeWarning, match=r"^2 parameters are in several optimizers \('disc\.weight',"
                      r" 'disc\.bias': optimizers 0, 1\): each of them steps those parameters\. That is fine for"
                      r" stage-wise training or a deliberately shared layer; otherwise give each optimizer its own"
                      r" parameters") as record:
        setup = validate_optimizers(shared, net)
    assert record[0].filename == __file__  # points at the caller's line
    assert len(setup.optimizers) == 2


def test_frequency_none_means_no_frequency(net):
    a, b = torch.optim.SGD(net.gen.parameters(), lr=0.1), torch.optim.SGD(net.disc.parameters(), lr=0.1)
    net.automatic_optimization = False
    setup = validate_optimizers([{"optimizer": a, "frequency": None}, {"optimizer": b, "frequency": None}], net)
    assert setup.frequencies is None and setup.optimizers == (a, b)


def test_trainable_parameter_in_no_optimizer_warns_when_a_gradient_reaches_it(net):
    validate_optimizers(torch.optim.SGD(net.gen.parameters(), lr=0.1), net)  # nothing to say yet: no gradient
    with torch.no_grad():
        frozen = net.disc(net.gen(torch.ones(1, 2)))
    net.gen(torch.ones(1, 2)).sum().backward()  # the loss does not reach `disc`: it trains nothing, rightly
    with pytest.warns(RecipeWarning, match=r"^2 trainable parameters of Net are in no optimizer and will not be"
                      r" trained: 'disc\.weight', 'disc\.bias' \(a backward pass gave 'disc\.bias' a"
                      r" gradient\)\. Add them to a param group, or set `requires_grad=False` if that is deliberate\.$"
                      ) as record:
        net.disc(net.gen(torch.ones(1, 2)) + frozen).sum().backward()
    assert len(record) == 1 and record[0].filename == __file__  # the line that validated (no configure_optimizers)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.disc(net.gen(torch.ones(1, 2))).sum().backward()  # once
    net.disc.requires_grad_(False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_optimizers(torch.optim.SGD(net.gen.parameters(), lr=0.1), net)
        net.disc(net.gen(torch.ones(1, 2))).sum().backward()


def test_a_parameter_an_optimizer_takes_before_its_first_gradient_is_not_reported(net):
    optimizer = torch.optim.SGD(net.gen.parameters(), lr=0.1)
    validate_optimizers(optimizer, net)
    optimizer.add_param_group({"params": list(net.disc.parameters())})  # as BackboneFinetuning does
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.disc(net.gen(torch.ones(1, 2))).sum().backward()


def test_an_empty_param_group_is_a_warning_not_an_error(net):
    with pytest.warns(RecipeWarning, match=r"^Adam param group 1 is empty: its 'params' hold no tensor, so it trains"
                      r" nothing\. If that is not deliberate, give it parameters") as record:
        setup = validate_optimizers(_with_empty_group(torch.optim.Adam(net.parameters(), lr=1e-3)), net)
    assert record[0].filename == __file__ and len(setup.optimizers) == 1


@pytest.mark.parametrize(("rank", "warns"), [("0", True), ("1", False)])
def test_only_the_first_process_warns(monkeypatch, net, rank, warns):
    """Every rank runs the same checks; only rank 0 says so, as Lightning's `rank_zero_warn` does (before the process
    group exists, the rank is the launcher's: torchrun's ``RANK``)."""
    monkeypatch.setenv("RANK", rank)
    net.automatic_optimization = False
    shared = [torch.optim.SGD(net.parameters(), lr=0.1), torch.optim.SGD(net.disc.parameters(), lr=0.1)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        validate_optimizers(shared, net)
    assert [str(w.message).split(" (")[0] for w in record] == (["2 parameters are in several optimizers"] if warns
                                                                else [])
