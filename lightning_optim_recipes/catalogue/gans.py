"""GAN recipes: two optimizers, a critic (discriminator) and a generator, alternated.

The three recipes name their optimizers ``critic`` and ``generator``, so one module runs each of them: its
``critic_step`` trains ``self.critic`` and its ``generator_step`` trains ``self.generator`` (see
`AlternatingOptimizersMixin`). A module whose discriminator is ``self.discriminator`` keeps ``critic_step`` and says
so: ``get_recipe("dcgan", optimizers={"critic": {"modules": ["discriminator"]}})``.
"""

from __future__ import annotations

from lightning_optim_recipes.catalogue._examples import CriticGenerator
from lightning_optim_recipes.catalogue._registry import RecipeEntry, Source, register

__all__: list[str] = []  # the entries are reached by name: `get_recipe("wgan-gp")`

_SAME_NAMES = (
    "Optimizer names: the paper's discriminator is the 'critic' optimizer (it trains `self.critic` with"
    " `critic_step`), as in the catalogue's other GAN recipes, so one module runs each of them; for a"
    " `self.discriminator`, add `optimizers={'critic': {'modules': ['discriminator']}}`."
)

WGAN_GP = register(RecipeEntry(
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
        ("Adam lr 1e-4, beta1 0, beta2 0.9", "Algorithm 1",
         "We use default values of λ = 10, ncritic = 5, α = 0.0001, β1 = 0, β2 = 0.9."),
        ("the same Adam for both networks", "Algorithm 1, lines 9 and 12",
         "w ← Adam(∇w …, w, α, β1, β2) / θ ← Adam(∇θ …, θ, α, β1, β2)"),
        ("5 critic steps per generator step", "Algorithm 1", "ncritic = 5"),
        ("gradient penalty weight 10 (values.gradient_penalty)", "Algorithm 1; Section 4, Penalty coefficient",
         "All experiments in this paper use λ = 10, which we found to work well across a variety of architectures"
         " and datasets ranging from toy tasks to large ImageNet CNNs."),
    ),
    choices=(
        "alternation {critic: 5, generator: 1} on consecutive batches, alternation_cycle 'run': Algorithm 1 runs"
        " n_critic critic iterations, each on a new real batch, per generator iteration over the whole run, not per"
        " epoch.",
        "No weight decay and a constant lr: Algorithm 1's updates have neither.",
        "eps: torch's default 1e-8 (the paper states none).",
        "The penalty itself is the user's loss: `self.recipe_values['gradient_penalty']` gives its weight.",
    ),
    notes=(
        "beta1: Algorithm 1's default is 0, but Appendix E gives the LSUN runs \"WGAN with gradient penalty: Adam"
        " (α = .0001, β1 = .5, β2 = .9)\", and four of the reference repository's six scripts (gan_toy.py,"
        " gan_mnist.py, gan_cifar.py, gan_language.py) use beta1 0.5; the recipe keeps Algorithm 1's default. For"
        " 0.5: get_recipe('wgan-gp', optimizers={'critic': {'optimizer_kwargs': {'betas': [0.5, 0.9]}},"
        " 'generator': {'optimizer_kwargs': {'betas': [0.5, 0.9]}}}).",
        "Appendix B adds a critic weight decay only for its random-architecture runs with normalization: \"if we"
        " use batch normalization (or layer normalization) we also apply a small weight decay (λ = 10−3)\".",
    ),
    preview={"max_epochs": 4, "steps_per_epoch": 60},
    module=CriticGenerator,
))

DCGAN = register(RecipeEntry(
    name="dcgan",
    summary="DCGAN: Adam 2e-4, beta1 0.5, for both networks, one discriminator step per generator step",
    source=Source(
        authors="Radford, Metz, Chintala",
        year=2016,
        title="Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks",
        venue="ICLR 2016 (arXiv:1511.06434)",
        where="Section 4 (Details of adversarial training)",
    ),
    recipe={
        "optimizers": {
            "critic": {"optimizer": "Adam", "lr": 2e-4, "optimizer_kwargs": {"betas": [0.5, 0.999]}},
            "generator": {"optimizer": "Adam", "lr": 2e-4, "optimizer_kwargs": {"betas": [0.5, 0.999]}},
        },
        "alternation": {"critic": 1, "generator": 1},
        "alternation_cycle": "run",
    },
    numbers=(
        ("Adam lr 2e-4 (both networks)", "Section 4",
         "We found the suggested learning rate of 0.001, to be too high, using 0.0002 instead."),
        ("beta1 0.5 (both networks)", "Section 4",
         "leaving the momentum term β1 at the suggested value of 0.9 resulted in training oscillation and"
         " instability while reducing it to 0.5 helped stabilize training."),
    ),
    choices=(
        "beta2 0.999: the paper does not state it; Adam's suggested value, which the authors' code keeps"
        " (Newmu/dcgan_code lib/updates.py:142, `b2=0.999`), as pytorch/examples does (dcgan/main.py:216-217).",
        "eps: torch's default 1e-8, the authors' code's too (lib/updates.py:142, `e=1e-8`).",
        "One discriminator step per generator step, on alternate batches: the authors' code"
        " (faces/train_uncond_dcgan.py:36 `k = 1  # # of discrim updates for each gen update`, and :203-206, which"
        " trains G or D on each batch in turn); pytorch/examples trains both on every batch:"
        " get_recipe('dcgan', alternation=['critic', 'generator']).",
        "No weight decay: the paper never mentions it, and pytorch/examples uses none. The authors' Theano code adds"
        " an L2 term of 1e-5 to every gradient (faces/train_uncond_dcgan.py:37 `l2 = 1e-5`); torch's Adam does the"
        " same with optimizers={'critic': {'weight_decay': 1e-5, 'no_decay': 'none'}, 'generator': {...}}.",
        "A constant lr: the paper has no schedule (the authors' code: niter_decay = 0).",
        "The batch of 128 (Section 4: \"mini-batch size of 128\") is the DataLoader's, not the recipe's.",
        _SAME_NAMES,
    ),
    preview={"max_epochs": 4, "steps_per_epoch": 60},
    module=CriticGenerator,
))

TTUR = register(RecipeEntry(
    name="ttur",
    summary="Two time-scale update rule as SAGAN uses it: Adam betas (0, 0.9), critic lr 4e-4, generator lr 1e-4, 1:1",
    source=Source(
        authors="Zhang, Goodfellow, Metaxas, Odena",
        year=2019,
        title="Self-Attention Generative Adversarial Networks",
        venue="ICML 2019, PMLR 97 (arXiv:1805.08318)",
        where="Section 5 (Network structures and implementation details) and Section 5.1",
    ),
    also=(Source(
        authors="Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter",
        year=2017,
        title="GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium",
        venue="NIPS 2017 (arXiv:1706.08500)",
        where="Table 1 and Section Experiments",
    ),),
    recipe={
        "optimizers": {
            "critic": {"optimizer": "Adam", "lr": 4e-4, "optimizer_kwargs": {"betas": [0.0, 0.9]}},
            "generator": {"optimizer": "Adam", "lr": 1e-4, "optimizer_kwargs": {"betas": [0.0, 0.9]}},
        },
        "alternation": {"critic": 1, "generator": 1},
        "alternation_cycle": "run",
    },
    numbers=(
        ("Adam beta1 0, beta2 0.9 (both networks)", "Section 5, Network structures and implementation details",
         "For all models, we use the Adam optimizer (Kingma & Ba, 2015) with β1 = 0 and β2 = 0.9 for training."),
        ("critic (discriminator) lr 4e-4, generator lr 1e-4", "Section 5, Network structures and implementation"
         " details", "By default, the learning rate for the discriminator is 0.0004 and the learning rate for the"
         " generator is 0.0001."),
        ("one critic step per generator step", "Section 5.1",
         "use the imbalanced learning rates to train the generator and the discriminator with 1:1 updates."),
    ),
    choices=(
        "1:1 on alternate batches, as wgan-gp's n_critic = 1 (Heusel et al. on their WGAN-GP runs: \"For TTUR however,"
        " the discriminator is updated only once per iteration.\"); both on every batch:"
        " get_recipe('ttur', alternation=['critic', 'generator']).",
        "eps: torch's default 1e-8 (the paper states none; TensorFlow's default in SAGAN's code is also 1e-8).",
        "No weight decay and constant lrs: the paper states neither.",
        _SAME_NAMES,
    ),
    notes=(
        "The lrs are SAGAN's, not the TTUR paper's: Heusel et al. use discriminator 3e-4 / generator 1e-4 for their"
        " WGAN-GP runs (Table 1) and, for DCGAN, a larger generator lr: \"For DCGAN the learning rate of the"
        " generator is larger then that of the discriminator\".",
        "SAGAN's official code passes no beta2 (brain-research/self-attention-gan model.py:135-138), so it ran with"
        " TensorFlow's default 0.999, not the paper's 0.9; the recipe follows the paper.",
        "Spectral normalization in both networks (Sections 4.1 and 5: \"spectral normalization (Miyato et al, 2018) is used"
        " for the layers in both the generator and the discriminator\") belongs to the model, not the recipe.",
    ),
    preview={"max_epochs": 4, "steps_per_epoch": 60},
    module=CriticGenerator,
))
