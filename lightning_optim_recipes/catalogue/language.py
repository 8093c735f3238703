"""Language-model recipes: BERT fine-tuning, GPT-3 and LLaMA pre-training (AdamW, warm-up, then a decay)."""

from __future__ import annotations

from lightning_optim_recipes.catalogue._examples import TinyBert, TinyGPT, TinyLlama
from lightning_optim_recipes.catalogue._registry import RecipeEntry, Source, register

__all__: list[str] = []  # the entries are reached by name: `get_recipe("bert-finetune")`

#: nanoGPT's rule (model.py:263-287): parameters of fewer than 2 dimensions get no decay; everything else, embeddings
#: and position embeddings of any shape included, is decayed (so no position/token name is exempt either).
ONE_DIM_NO_DECAY = {"replace": True, "bias": False, "use_model_hook": False, "positions": False}

_ONE_DIM_CHOICE = (
    "no decay on parameters of fewer than 2 dimensions (biases, norm weights); weights and embeddings decayed, as"
    " nanoGPT's configure_optimizers does (karpathy/nanoGPT model.py:263-287: \"all weight tensors in matmuls +"
    " embeddings decay, all biases and layernorms don't\"). The rule is nanoGPT's alone: a position embedding"
    " registered directly (a 3-D pos_embed) is decayed as nanoGPT's `p.dim() >= 2` decays it, where the library's"
    " default rule exempts it by name (no_decay={'positions': True} restores that)"
)

BERT_FINETUNE = register(RecipeEntry(
    name="bert-finetune",
    summary="BERT fine-tuning: AdamW 5e-5 (of 5e-5, 3e-5, 2e-5), decay 0.01 but not on biases and LayerNorm,"
            " 10% warm-up, linear to 0",
    source=Source(
        authors="Devlin, Chang, Lee, Toutanova",
        year=2019,
        title="BERT: Pre-training of Deep Bidirectional Transformers for Language Understanding",
        venue="NAACL-HLT 2019 (arXiv:1810.04805)",
        where="Appendix A.3 (fine-tuning), with A.2 for the values fine-tuning keeps from pre-training",
    ),
    recipe={
        "optimizer": "AdamW",
        "lr": 5e-5,
        "weight_decay": 0.01,
        "optimizer_kwargs": {"betas": [0.9, 0.999], "eps": 1e-6},
        "no_decay": {"replace": True, "module_types": ["LayerNorm"], "one_dim": False, "use_model_hook": False},
        "scheduler": {"type": "warmup_linear", "warmup_fraction": 0.1},
        "gradient_clip_val": 1.0,
    },
    numbers=(
        ("lr 5e-5, the first of the grid", "Appendix A.3",
         "Batch size: 16, 32 / Learning rate (Adam): 5e-5, 3e-5, 2e-5 / Number of epochs: 2, 3, 4"),
        ("the other values as in pre-training", "Appendix A.3",
         "For fine-tuning, most model hyperparameters are the same as in pre-training, with the exception of the"
         " batch size, learning rate, and number of training epochs."),
        ("beta1 0.9, beta2 0.999, weight decay 0.01, linear decay", "Appendix A.2 (pre-training)",
         "We use Adam with learning rate of 1e-4, β1 = 0.9, β2 = 0.999, L2 weight decay of 0.01, learning rate"
         " warmup over the first 10,000 steps, and linear decay of the learning rate."),
    ),
    choices=(
        "lr 5e-5 of the grid {5e-5, 3e-5, 2e-5}: the reference code's default (google-research/bert"
        " run_classifier.py:84) and Section 4.2's SQuAD v1.1 lr (\"We fine-tune for 3 epochs with a learning rate of"
        " 5e-5 and a batch size of 32.\"); the paper picks per task on the Dev set. For another:"
        " get_recipe('bert-finetune', lr=3e-5), or in YAML `optim_recipe: {recipe: bert-finetune, lr: 3.0e-5}`.",
        "Warm-up over the first 10% of the run, then linear decay to 0 at the last step: the reference code"
        " (run_classifier.py:89-92 `warmup_proportion 0.1`, :844-845; optimization.py:31-54 `end_learning_rate=0.0`)."
        " A.2's 10,000 warm-up steps belong to the 1,000,000-step pre-training; the paper says nothing of"
        " fine-tuning's warm-up. The code starts its warm-up at 0 and draws its decay line from step 0, so it"
        " leaves the warm-up at 90% of the peak; the recipe's warm-up runs step k at (k + 1) / warm-up steps of the"
        " peak and decays from the peak (scheduler={'warmup_start': 'zero'} starts at 0, as Hugging Face's"
        " get_linear_schedule_with_warmup does).",
        "AdamW (decoupled weight decay): the reference code's AdamWeightDecayOptimizer decays the weights outside"
        " Adam's update (optimization.py:131-151), which the paper calls \"L2 weight decay\". That optimizer also"
        " skips Adam's bias correction; torch's AdamW keeps it.",
        "No decay on biases and LayerNorm only (the rule replaces the default's): the reference code's"
        " exclude_from_weight_decay=[\"LayerNorm\", \"layer_norm\", \"bias\"] (optimization.py:59-65); embeddings"
        " are decayed. The paper does not say which parameters are exempt.",
        "eps 1e-6 (optimization.py:64 `epsilon=1e-6`) and gradient clipping at global norm 1.0 (optimization.py:74"
        " `clip_norm=1.0`): the reference code's; the paper states neither.",
        "Batch size {16, 32} and epochs {2, 3, 4} are the run's (the DataLoader's and the Trainer's): the schedule"
        " follows whatever length the Trainer gives.",
    ),
    notes=(
        "Section 4.1's GLUE runs search one more lr: \"we selected the best fine-tuning learning rate (among 5e-5,"
        " 4e-5, 3e-5, and 2e-5) on the Dev set\", with \"a batch size of 32\" and \"3 epochs\".",
    ),
    preview={"max_epochs": 3, "steps_per_epoch": 100},
    module=TinyBert,
))

GPT_PRETRAIN = register(RecipeEntry(
    name="gpt-pretrain",
    summary="GPT-3 pre-training: AdamW 6e-4, betas (0.9, 0.95), eps 1e-8, decay 0.1, clip 1.0, warm-up,"
            " cosine to 10% over 260/300 of the run, then held",
    source=Source(
        authors="Brown et al. (31 authors)",
        year=2020,
        title="Language Models are Few-Shot Learners",
        venue="NeurIPS 2020 (arXiv:2005.14165)",
        where="Appendix B (Details of Model Training); Table 2.1 for the lr",
    ),
    recipe={
        "optimizer": "AdamW",
        "lr": 6e-4,
        "weight_decay": 0.1,
        "optimizer_kwargs": {"betas": [0.9, 0.95], "eps": 1e-8},
        "no_decay": ONE_DIM_NO_DECAY,
        "scheduler": {"type": "warmup_cosine", "warmup_fraction": 0.00125, "min_lr_ratio": 0.1,
                      "decay_fraction": 260 / 300},
        "gradient_clip_val": 1.0,
    },
    numbers=(
        ("beta1 0.9, beta2 0.95, eps 1e-8", "Appendix B",
         "To train all versions of GPT-3, we use Adam with β1 = 0.9, β2 = 0.95, and ϵ = 10−8"),
        ("gradient clipping at global norm 1.0", "Appendix B", "we clip the global norm of the gradient at 1.0"),
        ("weight decay 0.1", "Appendix B",
         "All models use weight decay of 0.1 to provide a small amount of regularization [LH17]."),
        ("cosine decay to 10% of the peak (min_lr_ratio 0.1)", "Appendix B",
         "we use cosine decay for learning rate down to 10% of its value"),
        ("the cosine over the first 260B of the run's 300B tokens, then 10% of the peak to the end (decay_fraction"
         " 260 / 300: the floor from optimizer step round(260 / 300 x steps) - 1 on)", "Appendix B; Table 2.1",
         "over 260 billion tokens (after 260 billion tokens, training continues at 10% of the original learning"
         " rate) / All models were trained for a total of 300 billion tokens."),
        ("linear warm-up over 375M of the run's 300B tokens (warmup_fraction 0.00125)", "Appendix B; Table 2.1",
         "There is a linear LR warmup over the first 375 million tokens. / All models were trained for a total of"
         " 300 billion tokens."),
        ("lr 6e-4 (GPT-3 Small, 125M parameters)", "Table 2.1", "GPT-3 Small 125M 12 768 12 64 0.5M 6.0 × 10−4"),
    ),
    choices=(
        "AdamW: the paper says Adam with weight decay citing [LH17], Loshchilov and Hutter's decoupled weight decay;"
        " nanoGPT uses torch.optim.AdamW (model.py:284).",
        "lr: GPT-3 Small's row of Table 2.1, nanoGPT's default (train.py:58 `learning_rate = 6e-4`); the larger"
        " models' lrs are in the same table (Medium: get_recipe('gpt-pretrain', lr=3e-4)).",
        "Warm-up as a fraction of the run, 375M / 300B tokens = 0.125%: tokens do not carry over to another run,"
        " its share of the run does. (nanoGPT warms up over 2,000 of 600,000 iterations, train.py:59,66.) A run of"
        " 400 optimizer steps or fewer rounds it to 0 steps: the engine warns and the preview marks it; give such a"
        " run scheduler={'warmup_fraction': None, 'warmup_steps': N}.",
        "The warm-up runs step k at (k + 1) / W of the peak (W warm-up steps), the peak at its last step: the"
        " paper gives only the warm-up's length. nanoGPT's runs step k at (k + 1) / (W + 1) and reaches the peak"
        " one step after it (karpathy/nanoGPT 3adf61e train.py:233-234 `return learning_rate * (it + 1) /"
        " (warmup_iters + 1)`); scheduler={'warmup_start': 'zero'} starts at 0 instead (Hugging Face's"
        " convention).",
        _ONE_DIM_CHOICE + "; the paper does not say which parameters are decayed.",
        "GPT-3's batch-size ramp (\"from a small value (32k tokens) to the full value over the first 4-12 billion"
        " tokens\") is the data loader's, not the optimizer's; nanoGPT has none.",
    ),
    notes=(
        "nanoGPT decays until the last iteration instead (train.py:59,67: lr_decay_iters = max_iters = 600000):"
        " get_recipe('gpt-pretrain', scheduler={'decay_fraction': None}).",
    ),
    preview={"max_epochs": 8, "steps_per_epoch": 1000},
    module=TinyGPT,
))

LLAMA_PRETRAIN = register(RecipeEntry(
    name="llama-pretrain",
    summary="LLaMA pre-training: AdamW 3e-4, betas (0.9, 0.95), decay 0.1, clip 1.0, 2,000 warm-up steps, cosine"
            " to 10%",
    source=Source(
        authors="Touvron, Lavril, Izacard, Martinet, Lachaux, Lacroix, Rozière, Goyal, Hambro, Azhar, Rodriguez,"
                " Joulin, Grave, Lample",
        year=2023,
        title="LLaMA: Open and Efficient Foundation Language Models",
        venue="arXiv:2302.13971",
        where="Section 2.3 (Optimizer) and Table 2",
    ),
    also=(Source(
        authors="Touvron et al.",
        year=2023,
        title="Llama 2: Open Foundation and Fine-Tuned Chat Models",
        venue="arXiv:2307.09288",
        where="Section 2.2 (Training Details, Hyperparameters)",
    ),),
    recipe={
        "optimizer": "AdamW",
        "lr": 3e-4,
        "weight_decay": 0.1,
        "optimizer_kwargs": {"betas": [0.9, 0.95], "eps": 1e-5},
        "no_decay": ONE_DIM_NO_DECAY,
        "scheduler": {"type": "warmup_cosine", "warmup_steps": 2000, "min_lr_ratio": 0.1},
        "gradient_clip_val": 1.0,
    },
    numbers=(
        ("AdamW, beta1 0.9, beta2 0.95", "Section 2.3",
         "Our models are trained using the AdamW optimizer (Loshchilov and Hutter, 2017), with the following"
         " hyper-parameters: β1 = 0.9, β2 = 0.95."),
        ("cosine to 10% of the peak (min_lr_ratio 0.1)", "Section 2.3",
         "We use a cosine learning rate schedule, such that the final learning rate is equal to 10% of the maximal"
         " learning rate."),
        ("weight decay 0.1, gradient clipping 1.0, 2,000 warm-up steps", "Section 2.3",
         "We use a weight decay of 0.1 and gradient clipping of 1.0. We use 2,000 warmup steps, and vary the"
         " learning rate and batch size with the size of the model (see Table 2 for details)."),
        ("lr 3e-4 (the 6.7B and 13.0B models)", "Table 2", "6.7B ... 3.0e−4; 13.0B ... 3.0e−4"),
    ),
    choices=(
        "eps 1e-5: LLaMA states none; Llama 2, by the same group, does (Section 2.2, Hyperparameters): \"We trained"
        " using the AdamW optimizer (Loshchilov and Hutter, 2017), with β1 = 0.9, β2 = 0.95, eps = 10−5.\"",
        "lr: the 6.7B and 13.0B models' (Table 2); the 32.5B and 65.2B models use 1.5e-4:"
        " get_recipe('llama-pretrain', lr=1.5e-4).",
        "The warm-up stays 2,000 optimizer steps, as the paper gives it in steps: it fits any run longer than that"
        " (the 7B model's 1.0T tokens at 4M per batch are about 250,000 steps). A shorter run needs"
        " scheduler={'warmup_steps': None, 'warmup_fraction': 0.01}.",
        "The warm-up runs step k at (k + 1) / 2000 of the peak, the peak at its last step: the paper gives only the"
        " warm-up's length; scheduler={'warmup_start': 'zero'} starts at 0 instead (Hugging Face's convention).",
        _ONE_DIM_CHOICE + "; the paper does not say which parameters are decayed.",
        "Clipping by the global norm (gradient_clip_algorithm 'norm'): \"gradient clipping of 1.0\" does not say"
        " which; the norm is the common reading, and GPT-3's (\"we clip the global norm of the gradient at 1.0\").",
    ),
    preview={"max_epochs": 10, "steps_per_epoch": 1000},
    module=TinyLlama,
))

WSD = register(RecipeEntry(
    name="wsd",
    summary="Warmup-stable-decay (constant lr + cooldown): AdamW 8e-4, betas (0.9, 0.95), decay 0.1, clip 1.0,"
            " 300 warm-up steps, the peak held, a (1-sqrt) cooldown to 0 over the last 20% of the run",
    source=Source(
        authors="Hägele, Bakouch, Kosson, Ben Allal, Von Werra, Jaggi",
        year=2024,
        title="Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations",
        venue="NeurIPS 2024 (arXiv:2405.18392)",
        where="Section 3 (Eq. 1 and Eq. (1-sqrt)), Sections 3.2 and 3.3, Appendix A.1",
    ),
    also=(Source(
        authors="Hu et al. (25 authors)",
        year=2024,
        title="MiniCPM: Unveiling the Potential of Small Language Models with Scalable Training Strategies",
        venue="arXiv:2404.06395",
        where="Sections 4.2 (Eq. 1), 4.3 and 6.2",
    ),),
    recipe={
        "optimizer": "AdamW",
        "lr": 8e-4,
        "weight_decay": 0.1,
        "optimizer_kwargs": {"betas": [0.9, 0.95]},
        "no_decay": {"module_types": ["Embedding"]},
        "scheduler": {"type": "wsd", "warmup": "300st", "decay": "20%", "decay_shape": "1-sqrt", "min_lr_ratio": 0.0},
        "gradient_clip_val": 1.0,
    },
    numbers=(
        ("AdamW, beta1 0.9, beta2 0.95, weight decay 0.1, gradient clipping 1.0", "Appendix A.1",
         "we follow standard practices in LLM training and use the AdamW optimizer with beta parameters (β1, β2) ="
         " (0.9, 0.95), decoupled weight decay of 0.1 and gradient clipping with 1.0."),
        ("lr 8e-4 (the 1B model's)", "Section 3.3",
         "we set an approximately optimal batch size and LR of 1.8M and 8e-4 for 100B and 460B token runs"),
        ("warm-up of 300 optimizer steps ('300st')", "Appendix A.1",
         "For warmup steps, we use a short warmup of 300 steps for the majority of runs and 1000-3000 for longer runs"
         " (above 100k total steps)."),
        ("the lr held at its peak between the warm-up and the cooldown", "Section 3, Eq. (1)",
         "η(n) = η_max if N_warmup < n ≤ N − N_decay"),
        ("the cooldown over the last 20% of the run (decay '20%')", "Section 3.2",
         "Our study of the relative number of cooldown steps, as shown in Fig. 5, reveals that the benefits of"
         " extended cooldown periods plateau at around 20%, which we select for the remaining experiments."),
        ("the (1-sqrt) shape (decay_shape '1-sqrt')", "Section 3.2, Eq. (1-sqrt)",
         "We identify a new function (1-sqrt) that outperforms the linear cooldown. / f(n, N, N_decay) ="
         " (1 − sqrt((n − (N − N_decay)) / N_decay))"),
        ("down to 0 (min_lr_ratio 0)", "Section 3",
         "The cooldown phase typically has the LR go to zero, mirroring the warmup phase, which gives rise to an"
         " overall trapezoidal shape"),
    ),
    choices=(
        "The warm-up's step k runs at (k + 1) / 300 of the peak (this library's convention): Eq. (1)'s"
        " n / N_warmup · η_max with the steps counted from 1. The reference code counts from 0 and starts the warm-up"
        " at 1/100 of the peak (epfml/schedules-and-scaling, src/optim/utils.py `wsd_schedule`, `init_div_factor=1e2`,"
        " commit 17e78d6).",
        "The cooldown's step i (from 0) runs at 1 − sqrt((i + 1) / N_decay) of the peak, Eq. (1-sqrt) with"
        " n − (N − N_decay) = i + 1: every cooldown step is below the peak and the last is at 0. The reference code"
        " evaluates it at i / N_decay (its first cooldown step at the peak, its last one step short of 0).",
        "lr 8e-4: the paper sweeps the lr of its 210M models (Figure 3) and states one, its 1B runs' (Section 3.3);"
        " for another: get_recipe('wsd', lr=1e-3).",
        "eps: the paper states none; torch's AdamW default 1e-8 is kept, as the reference code keeps it"
        " (src/main.py passes only lr, betas and weight decay).",
        "No decay on biases, norm weights and embeddings, decay on Linear weights: the reference code's"
        " get_parameter_group_specs (src/models/base.py: whitelist torch.nn.Linear; src/models/utils.py:"
        " BLACKLIST_WEIGHT_MODULES = LayerNorm, RMSNorm, Embedding); the paper says \"decoupled weight decay\" only.",
        "The warm-up stays 300 optimizer steps ('300st'), as the paper gives it in steps; for runs above 100k steps,"
        " get_recipe('wsd', scheduler={'warmup': '1000st'}). The cooldown is a share of the run ('20%'), read from the"
        " Trainer, so any run length keeps it.",
        "To branch cooldowns from a stable-phase checkpoint of a long run (\"the cooldown can be initiated at any"
        " time\", Section 3.1): get_recipe('wsd', scheduler={'decay_start': 'now', 'decay': '2000st'}) resumed with"
        " resume='recipe' and Trainer(max_steps=<checkpoint step> + 2000).",
    ),
    notes=(
        "Hu et al. (MiniCPM) name the schedule WSD, \"WSD(T; s) = ... f(s − T)η, T < s < S, where 0 < f(s − T) ≤ 1"
        " is a decreasing function about s\" (Section 4.2, Eq. 1), and find that \"having a decay of 10% of the total"
        " tokens is sufficient to achieve the best results, while a decay of 2.5% of total tokens falls short\""
        " (Section 4.3): get_recipe('wsd', scheduler={'decay': '10%'}).",
        "MiniCPM's own models decay exponentially, \"f(s − T) = 0.5^((s−S)/T), in which T is set to be 5000 steps"
        " (20B tokens)\" (Section 6.2): a shape this library does not offer (decay_shape 'linear', 'cosine' or"
        " '1-sqrt').",
        "Hägele et al.'s main comparison with cosine uses \"a cooldown for 20% of steps linearly going to zero\""
        " (Section 3.2): get_recipe('wsd', scheduler={'decay_shape': 'linear'}); and \"using only 5% decay with the"
        " (1-sqrt) cooldown can nearly match the performance of the cosine schedule on a 20B token run\" (Section 3.2).",
        "Continuing a run: \"the natural approach is to use checkpoints before the cooldown to continue training with a"
        " high LR; this avoids loss spikes and brittle training when rewarming the learning rate\" (Section 3.1).",
    ),
    preview={"max_epochs": 10, "steps_per_epoch": 300},
    module=TinyLlama,
))
