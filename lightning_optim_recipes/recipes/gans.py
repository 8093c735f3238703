"""GAN recipes: two optimizers, a critic (discriminator) and a generator, alternated."""

from __future__ import annotations

from lightning_optim_recipes.recipes._registry import CatalogueRecipe, Source, register

WGAN_GP = register(CatalogueRecipe(
    name="wgan-gp",
    summary="WGAN with gradient penalty: Adam 1e-4, betas (0, 0.9), 5 critic steps per generator step, penalty 10",
    source=Source(
        authors="Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville",
        year=2017,
        title="Improved Training of Wasserstein GANs",
        venue="NeurIPS 2017 (arXiv:1704.00028)",
        where="Algorithm 1 (default values)",
    ),
    recipe={
        "optimizers": {
            "critic": {"optimizer": "Adam", "lr": 1e-4, "optimizer_kwargs": {"betas": [0.0, 0.9]}},
            "generator": {"optimizer": "Adam", "lr": 1e-4, "optimizer_kwargs": {"betas": [0.0, 0.9]}},
        },
        "alternation": {"critic": 5, "generator": 1},
        "alternation_cycle": "run",
        "values": {"gradient_penalty": 10.0},
    },
    numbers=(
        ("Adam lr 1e-4, beta1 0, beta2 0.9 (both networks)", "Algorithm 1",
         "default values lambda = 10, n_critic = 5, alpha = 0.0001, beta1 = 0, beta2 = 0.9"),
        ("5 critic steps per generator step", "Algorithm 1", "n_critic = 5"),
        ("gradient penalty weight 10 (values.gradient_penalty)", "Algorithm 1 and Section 4",
         "lambda = 10; All experiments in this paper use lambda = 10"),
    ),
    choices=(
        "alternation_cycle 'run': Algorithm 1 runs n_critic critic iterations per generator iteration over the whole"
        " run, not per epoch.",
    ),
    preview={"max_epochs": 4, "steps_per_epoch": 60},
))
