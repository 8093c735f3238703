"""Classic recipes: the project's own examples, written as catalogue entries."""

from __future__ import annotations

from lightning_optim_recipes.catalogue._examples import EncoderDecoder
from lightning_optim_recipes.catalogue._registry import RecipeEntry, Source, register

__all__: list[str] = []  # the entries are reached by name: `get_recipe("encoder-decoder")`

ENCODER_DECODER = register(RecipeEntry(
    name="encoder-decoder",
    summary="Two networks, two learning rates: Adam, encoder 1e-4, decoder 1e-3, weight decay 1e-6 only where it"
            " belongs, halved after epoch 2000",
    source=Source(
        authors="lightning_optim_recipes",
        year=2026,
        title="The seed's encoder-decoder example, done right",
        venue="the documentation of this project (docs/patterns/)",
        where="'Two networks, two learning rates' (docs/patterns/two-learning-rates.md) and 'Milestones: halve the"
              " lr, then keep it' (docs/patterns/milestones.md)",
    ),
    recipe={
        "optimizer": "Adam",
        "lr": 1e-3,
        "weight_decay": 1e-6,
        "no_decay": "default",
        "overrides": {"encoder": {"lr": 1e-4}, "decoder": {"lr": 1e-3}},
        "scheduler": {"type": "multistep", "milestones": [2000], "gamma": 0.5},
    },
    numbers=(
        ("Adam; weight decay 1e-6; encoder lr 1e-4, decoder lr 1e-3", "docs/patterns/two-learning-rates.md, 'The"
         " recipe'", 'groups = param_groups(self, weight_decay=1e-6, overrides={"encoder": {"lr": 1e-4}, "decoder":'
         ' {"lr": 1e-3}}) / return torch.optim.Adam(groups)'),
        ("lr x 0.5 after epoch 2000, then kept (interval 'epoch')", "docs/patterns/milestones.md, 'The recipe'",
         "halve the lr after 2000 epochs, then keep it. / multistep(opt, milestones=[2000], gamma=0.5)"),
    ),
    choices=(
        "What the seed got wrong, done right: its param groups were keyed 'encoder_params' and 'decoder_params',"
        " which torch does not read (every group needs 'params'); here `overrides` names the submodules.",
        "Weight decay only where it belongs: the default rule exempts biases, norm layers and 1-D parameters in both"
        " networks. Adam's weight decay is an L2 term added to the gradient, as in the README's example.",
        "lr 1e-3 for anything outside the encoder and the decoder (the decoder's lr).",
        "betas and eps: torch's defaults.",
    ),
    preview={"max_epochs": 2500, "steps_per_epoch": 1},
    module=EncoderDecoder,
))
