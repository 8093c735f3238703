"""The checks of Muon beside AdamW: an lr sized for the other optimizer (`check_hybrid_lrs`), advised in the form the
user wrote (`hybrid_optimizer`'s keywords, a recipe's keys, the parts' own constructors), and a Muon built by hand
over parameters that are not hidden layers' weights (`warn_muon_off_hidden`).

A `HybridOptimizer` is read by its ``parts`` (and ``split``, the `MuonSplit` `hybrid_optimizer` built it from), so
that this module sits below `hybrid`, which runs the lr check when a `HybridOptimizer` is made.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any, Optional

import torch
from torch import nn

from lightning_optim_recipes._checks import count
from lightning_optim_recipes.errors import RecipeError, warn
from lightning_optim_recipes.muon_split import decide_split

__all__ = ["ADAMW_SIZED", "MUON_SIZED", "check_hybrid_lrs", "lr_advice", "muon_beside_others", "muon_refusal",
           "warn_muon_off_hidden"]

#: Muon's lr below this, under ``adjust_lr_fn='original'``, is sized for AdamW; AdamW's at or above ``MUON_SIZED`` is
#: sized for Muon. Muon's lrs that train under 'original' are 0.02 (Jordan et al.'s default) to 0.05 (the
#: modded-nanogpt record); AdamW's are 1e-5 to 3e-3 (BERT's 5e-5, GPT-3's 6e-4, Liu et al.'s 4.2e-4).
ADAMW_SIZED = 5e-3
MUON_SIZED = 1e-2

#: How the lr warnings write their fix, by the form the optimizer was written in: ``"keywords"``
#: (`hybrid_optimizer`'s ``muon=``/``adamw=``), ``"recipe"`` (a recipe's keys) or ``"parts"`` (a `HybridOptimizer`
#: over optimizers built by hand).
_FORM: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("lightning_optim_recipes_lr_advice",
                                                                      default=None)
_FIXES = {
    "keywords": {
        "muon up": "Raise Muon's lr (e.g. muon={'lr': 0.02}), or pass adjust_lr_fn='match_rms_adamw'",
        "muon down": "Use an AdamW lr (e.g. muon={'lr': 4.2e-4}, Moonlight's), or adjust_lr_fn='original'",
        "adamw": "Give the {cls} part its own lr (e.g. adamw={{'lr': 3e-4}}), or set a group's lr on purpose with"
                 " adamw={{'groups': {{'embedding': {{'lr': ...}}}}}}",
    },
    "recipe": {
        "muon up": "Raise Muon's lr (e.g. 'lr': 0.02 in the recipe), or set 'adjust_lr_fn': 'match_rms_adamw' in its"
                   " 'optimizer_kwargs'",
        "muon down": "Use an AdamW lr (e.g. 'lr': 4.2e-4 in the recipe, Moonlight's), or 'adjust_lr_fn': 'original'"
                     " in its 'optimizer_kwargs'",
        "adamw": "Give the {cls} part its own lr (e.g. 'hybrid': {{'lr': 3e-4}} in the recipe), or set a group's lr"
                 " on purpose with 'hybrid': {{'groups': {{'embedding': {{'lr': ...}}}}}}",
    },
    "parts": {
        "muon up": "Raise Muon's lr (e.g. torch.optim.Muon(params, lr=0.02)), or pass adjust_lr_fn='match_rms_adamw'",
        "muon down": "Use an AdamW lr (e.g. torch.optim.Muon(params, lr=4.2e-4, adjust_lr_fn='match_rms_adamw'),"
                     " Moonlight's), or adjust_lr_fn='original'",
        "adamw": "Give the {cls} part its own lr (e.g. torch.optim.{cls}(params, lr=3e-4)), or set a group's lr on"
                 " purpose with a param group {{'params': [...], 'lr': ...}}",
    },
}
_SILENCE = " If it is deliberate, silence this with `warnings.filterwarnings('ignore', '.*{}', RecipeWarning)`."


@contextlib.contextmanager
def lr_advice(form: str) -> Iterator[None]:
    """Within it, the lr warnings of a `HybridOptimizer` being made advise in `form` (``"keywords"``, ``"recipe"``
    or ``"parts"``); an outer form (a recipe's, around `hybrid_optimizer`'s) is kept."""
    token = _FORM.set(_FORM.get() or form)
    try:
        yield
    finally:
        _FORM.reset(token)


def check_hybrid_lrs(optimizer: Any) -> None:
    """Warn (`RecipeWarning`) when a part of a `HybridOptimizer` has an lr evidently sized for the other optimizer:
    an AdamW-sized lr on Muon under ``adjust_lr_fn='original'``, a Muon-sized lr on Muon under ``'match_rms_adamw'``
    or on the AdamW part. Only each part's own default lr is read: a group's lr set on purpose (modded-nanogpt's 0.6
    for the embedding) is the user's. The fix is written as the optimizer was (see `lr_advice`)."""
    fixes = _FIXES[_FORM.get() or "parts"]
    muon = [p for p in optimizer.parts if isinstance(p, torch.optim.Muon)]
    others = [p for p in optimizer.parts if not isinstance(p, torch.optim.Muon)]
    for part in muon:
        lr, adjust = part.defaults.get("lr"), part.defaults.get("adjust_lr_fn")
        if not isinstance(lr, float) and not isinstance(lr, int) or lr <= 0:
            continue
        if adjust in (None, "original") and lr < ADAMW_SIZED:
            shown = "'original'" if adjust else "None (torch's default, 'original')"
            warn(
                f"Muon's lr is {lr:g} with adjust_lr_fn={shown}: an AdamW-sized lr. Under 'original', torch's Muon"
                " orthogonalizes each update (its singular values near 1) and scales it only by sqrt(max(1,"
                " rows/cols)), so the lrs that train are about 0.02 (Jordan et al.'s default) to 0.05 (the"
                f" modded-nanogpt record), {0.02 / lr:.3g}x to {0.05 / lr:.3g}x this one. {fixes['muon up']} to"
                " keep an AdamW lr for both parts (Liu et al. 2025)." + _SILENCE.format("AdamW-sized lr")
            )
        elif adjust == "match_rms_adamw" and lr >= MUON_SIZED:
            warn(
                f"Muon's lr is {lr:g} with adjust_lr_fn='match_rms_adamw': a Muon-sized lr under a rule that sizes it"
                " as AdamW's. 'match_rms_adamw' multiplies it by 0.2 x sqrt(max(rows, cols)) (Liu et al. 2025, Eq. 4),"
                f" {_scale(part):.3g} for this model's largest matrix, so each step moves those weights as an AdamW"
                f" step of lr {lr:g} would. {fixes['muon down']} to keep a Muon lr." + _SILENCE.format("Muon-sized lr")
            )
    for other in others:
        lr = other.defaults.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr >= MUON_SIZED and muon:
            theirs = ", ".join(f"{p.defaults.get('lr'):g}" for p in muon)
            cls = type(other).__name__
            warn(
                f"The {cls} part's lr is {lr:g}: a Muon-sized lr (Muon's is {theirs}). An {cls} step moves every"
                f" element by about its lr, so its usual lrs are 1e-4 to 3e-3; at {lr:g} the embeddings, head and norms"
                f" it trains take steps {lr / 1e-3:.3g}x those of lr 1e-3. {fixes['adamw'].format(cls=cls)}."
                + _SILENCE.format("Muon-sized lr")
            )


def _scale(part: torch.optim.Optimizer) -> float:
    sizes = [max(p.shape[0], p.numel() // max(p.shape[0], 1)) for g in part.param_groups for p in g["params"]]
    return 0.2 * max(sizes, default=1) ** 0.5


# ------------------------------------------------------------------------------- torch's Muon, by hand


def muon_refusal(err: BaseException, module: Optional[nn.Module]) -> Optional[RecipeError]:
    """The `RecipeError` for torch's ``ValueError: Muon only supports 2D parameters`` (a Muon given every parameter,
    in `err`'s traceback), that names them and the fix; None for any other error."""
    if not isinstance(err, ValueError) or "Muon only supports 2D parameters" not in str(err):
        return None
    tb, muon = err.__traceback__, None
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self") if tb.tb_frame.f_code.co_name == "__init__" else None
        if isinstance(candidate, torch.optim.Muon):
            muon = candidate
        tb = tb.tb_next
    if muon is None:
        return None
    names = {id(p): n for n, p in module.named_parameters()} if module is not None else {}
    refused = [p for group in muon.param_groups for p in group["params"] if p.ndim != 2]
    shown = [f"{repr(names[id(p)]) if id(p) in names else 'a parameter'} ({'x'.join(map(str, p.shape)) or '0-D'})"
             for p in refused[:4]]
    listed = ", ".join(shown) + (f" and {len(refused) - 4} more" if len(refused) > 4 else "")
    lr = muon.defaults.get("lr")
    return RecipeError(
        f"torch.optim.Muon takes only 2-D parameters, and `configure_optimizers` gave it"
        f" {count(len(refused), 'parameter')} of another shape: {listed}. Muon is for the hidden layers' 2-D"
        " weights; the embeddings, the output head, norms and biases train with AdamW beside it, in one optimizer:"
        f" return `hybrid_optimizer(self, muon={{'lr': {lr!r}}}, adamw={{'lr': 3e-4}})`, split by `muon_split(self)`"
        " (its `.table()` shows which parameter each trains), or `HybridOptimizer([torch.optim.Muon(split.muon_params,"
        " ...), torch.optim.AdamW(split.adamw_params, ...)])` with `split = muon_split(self)`."
    )


def muon_beside_others(optimizers: Sequence[Any]) -> Optional[RecipeError]:
    """The `RecipeError` for several optimizers, a Muon among them, under automatic optimization: Muon beside AdamW is
    one `HybridOptimizer`, stepped on every batch. None when no Muon is among several."""
    if len(optimizers) < 2 or not any(isinstance(o, torch.optim.Muon) for o in optimizers):
        return None
    classes = " and ".join(type(o).__name__ for o in optimizers)
    muon = next(o for o in optimizers if isinstance(o, torch.optim.Muon))
    other = next((o for o in optimizers if not isinstance(o, torch.optim.Muon)), None)
    lrs = f"muon={{'lr': {muon.defaults.get('lr')!r}}}" + (
        f", adamw={{'lr': {other.defaults.get('lr')!r}}}" if other is not None else "")
    return RecipeError(
        f"`configure_optimizers` returned {len(optimizers)} optimizers ({classes}), but Lightning 2.x steps one"
        f" optimizer under automatic optimization. Muon beside AdamW is one optimizer: return `hybrid_optimizer(self,"
        f" {lrs})`, which splits the parameters between them (`muon_split`) and steps both on every batch, or wrap"
        f" the ones you built: `HybridOptimizer([{', '.join(type(o).__name__.lower() for o in optimizers)}])`."
        " (`AlternatingOptimizersMixin` would step each only on its own batches; under manual optimization you step"
        " them yourself.)"
    )


# ----------------------------------------------------------------------------------- Muon built by hand


def warn_muon_off_hidden(optimizers: Sequence[Any], module: nn.Module, at: Any = None) -> None:
    """Warn (`RecipeWarning`) when a Muon that `configure_optimizers` built by hand (alone, or as a part of a
    `HybridOptimizer`) trains an embedding, a weight tied to one or the output head, as `muon_split` finds them:
    what ``hybrid_optimizer(overrides={...: 'muon'})`` refuses. One that `hybrid_optimizer` built is its split's."""
    held = []
    for optimizer in optimizers:
        if getattr(optimizer, "split", None) is not None:  # hybrid_optimizer's: its split decided, and refuses these
            continue
        parts = getattr(optimizer, "parts", None)
        for part in parts if isinstance(parts, tuple) else (optimizer,):
            if isinstance(part, torch.optim.Muon):
                held += [p for group in part.param_groups for p in group["params"]]
    if not held:
        return
    try:
        split = decide_split(module, no_decay=None, include_frozen=True)
    except RecipeError:  # a module the split cannot read (FSDP1's flattened parameters): nothing to say
        return
    rows = {id(row.param): row for row in split.rows}
    wrong = [rows[id(p)] for p in held if id(p) in rows and rows[id(p)].group in ("embedding", "head")]
    if not wrong:
        return
    listed = "; ".join(f"{row.name!r}, {row.why}" for row in wrong[:4]) + (
        f"; and {len(wrong) - 4} more" if len(wrong) > 4 else "")
    patterns = ", ".join(f"{(row.name.rpartition('.')[0] or row.name)!r}: 'muon'" for row in wrong[:4])
    warn(
        f"A hand-built Muon trains {count(len(wrong), 'parameter')} that {'is' if len(wrong) == 1 else 'are'} not a"
        f" hidden layer's weight: {listed}. Muon is for the 2-D weights of hidden layers; embeddings, the output head"
        " and anything tied to them train with AdamW (Jordan et al. 2024; Liu et al. 2025): `hybrid_optimizer`"
        f" refuses the same split (overrides={{{patterns}}}). Give {'it' if len(wrong) == 1 else 'them'} to the AdamW"
        " part (`muon_split(self).muon_params` are the parameters for Muon, `.table()` says why), or build the"
        " optimizer with `hybrid_optimizer(self, muon={...}, adamw={...})`. If it is deliberate, silence this with"
        " `warnings.filterwarnings('ignore', '.*hand-built Muon trains')`.",
        at=at,
    )
