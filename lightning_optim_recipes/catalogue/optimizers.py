"""Muon recipes: Muon over the hidden layers' matrices beside AdamW (or Adam) over the rest, in one
`HybridOptimizer` (the recipe's ``hybrid`` key): Moonlight's (Liu et al. 2025) and the modded-nanogpt record's."""

from __future__ import annotations

from lightning_optim_recipes.catalogue._examples import TinyGPT, UntiedGPT
from lightning_optim_recipes.catalogue._registry import RecipeEntry, Source, register

__all__: list[str] = []  # the entries are reached by name: `get_recipe("muon-moonlight")`

#: The modded-nanogpt commit whose train_gpt.py is record #21's code (its log, 2025-01-26_BatchSize/c44090cc...txt,
#: prints the same file), read at these line numbers.
MODDED_NANOGPT_COMMIT = "d220ebe50ef5f807777bb1188347d005b3d166a8"
#: The Moonlight repository's commit whose examples/toy_train.py the Moonlight entry quotes.
MOONLIGHT_COMMIT = "c2ad5b20c605086526a179d36901bfc41b52b44b"

MUON_MOONLIGHT = register(RecipeEntry(
    name="muon-moonlight",
    summary="Moonlight: Muon with its update RMS matched to AdamW's (adjust_lr_fn 'match_rms_adamw'), so one lr"
            " 4.2e-4 and weight decay 0.1 for Muon and AdamW (betas (0.9, 0.95)); 2,000 warm-up steps, cosine to 10%",
    source=Source(
        authors="Liu, Su, Yao, Jiang, Lai, Du, Qin, Xu, Lu, Yan, Chen, Zheng, Liu, Liu, Yin, He, Zhu, Wang, Wang,"
                " Dong, Zhang, Kang, Zhang, Xu, Zhang, Wu, Zhou, Yang (Kimi Team)",
        year=2025,
        title="Muon is Scalable for LLM Training",
        venue="arXiv:2502.16982",
        where="Section 2.2 (weight decay, consistent update RMS, matching AdamW, other hyper-parameters) and"
              " Section 3.3 (pretraining Moonlight)",
    ),
    also=(Source(
        authors="Moonshot AI",
        year=2025,
        title="Moonlight (reference code, examples/toy_train.py)",
        venue=f"github.com/MoonshotAI/Moonlight, commit {MOONLIGHT_COMMIT[:12]}",
        where="get_optimizer and the Muon class (lines 106-147, 200, 287-305)",
    ),),
    recipe={
        "optimizer": "Muon",
        "lr": 4.2e-4,
        "weight_decay": 0.1,
        "optimizer_kwargs": {"momentum": 0.95, "nesterov": True, "ns_steps": 5, "adjust_lr_fn": "match_rms_adamw"},
        "no_decay": "none",
        "hybrid": {"optimizer": "AdamW", "lr": 4.2e-4, "weight_decay": 0.1,
                   "optimizer_kwargs": {"betas": [0.9, 0.95], "eps": 1e-8}},
        "scheduler": {"type": "warmup_cosine", "warmup_steps": 2000, "min_lr_ratio": 0.1},
    },
    numbers=(
        ("Muon's update scaled by 0.2 x sqrt(max(A, B)), decoupled weight decay (torch's adjust_lr_fn"
         " 'match_rms_adamw': the same formula)", "Section 2.2, Eq. 4",
         "we scale Muon's update RMS to this range by the following adjustment: Wt = Wt−1 − ηt(0.2 · Ot ·"
         " sqrt(max(A, B)) + λWt−1)"),
        ("one lr and one weight decay for Muon and AdamW", "Section 2.2",
         "We would like the optimizer hyper-parameters (learning rate η, weight decay λ) to be shared among matrix"
         " and non-matrix parameters. [...] with this adjustment, Muon can directly reuse the learning rate and"
         " weight decay tuned for AdamW."),
        ("AdamW for the embedding, the head and the norms", "Section 2.2",
         "In practice, AdamW is used in couple with Muon to handle non-matrix based parameters, like RMSNorm, LM"
         " head, and embedding parameters."),
        ("5 Newton-Schulz steps, momentum 0.95", "Section 2.2 (Other Hyper-parameters)",
         "Hence we set N = 5 in this work for the sake of efficiency. We do not see a consistent performance gain in"
         " tuning momentum, so we chose 0.95, same as K. Jordan et al. 2024."),
        ("Nesterov momentum", "Section 2.1, footnote 1",
         "In practice, we follow (K. Jordan et al. 2024) to use a Nesterov-style momentum by putting µMt +"
         " ∇Lt(Wt−1) to the Newton-Schulz iteration instead of Mt."),
        ("weight decay 0.1", "Section 3.3 (Pretraining)", "The weight decay is set to 0.1 for all stages."),
        ("peak lr 4.2e-4 after a 2,000-step linear warm-up", "Section 3.3, stage 1",
         "0 to 33B tokens: In this stage, the learning rate linearly increases to 4.2e-4 in 2k steps."),
        ("cosine to 10% of the peak (min_lr_ratio 0.1)", "Section 3.3, stage 2",
         "33B to 5.2T tokens: In this stage, the learning rate decays from 4.2e-4 to 4.2e-5 in a cosine style."),
        ("AdamW betas (0.9, 0.95), eps 1e-8", f"reference code, toy_train.py:115-116 at {MOONLIGHT_COMMIT[:12]}",
         "adamw_betas=(0.9, 0.95), adamw_eps=1e-8,"),
    ),
    choices=(
        "AdamW's betas and eps are the reference code's (examples/toy_train.py:115-116, \"adamw_betas=(0.9, 0.95),"
        " adamw_eps=1e-8\"): the paper states neither.",
        "Weight decay on every parameter, norms and embeddings included (no_decay 'none'): the reference code"
        " applies `p.data.mul_(1 - lr * wd)` to all of them (toy_train.py:200 for Muon's, :236 for AdamW's), and"
        " the paper shares one λ \"among matrix and non-matrix parameters\". The library's usual rule instead:"
        " get_recipe('muon-moonlight', no_decay='default').",
        "Muon takes the 2-D weights of the hidden layers; the embedding, the head (tied or not), norms and biases"
        " go to AdamW, as the reference code splits them (toy_train.py:293-305: `p.ndim >= 2 and \"embed_tokens\""
        " not in name and \"lm_head\" not in name`), by `muon_split`'s rule.",
        "The warm-up stays 2,000 optimizer steps, as stated, and runs step k at (k + 1) / 2000 of the peak (the"
        " library's convention; \"linearly increases\" does not say from where; `warmup_start='zero'` runs step 0 at"
        " 0 instead). A shorter run needs"
        " scheduler={'warmup_steps': None, 'warmup_fraction': 0.01}.",
        "Stage 3 (\"the learning rate increases to 1e-4 in 100 steps, and then linearly decays to 0 in 500B"
        " tokens\", on the highest-quality data) is a separate cooldown run, not part of this recipe; neither is"
        " the batch-size doubling at 200B tokens (the data loader's).",
        "No gradient clipping: the paper states none.",
    ),
    notes=(
        "torch's AdamW adds eps to sqrt of the bias-corrected second moment; the reference code's AdamW adds it"
        " before the bias correction (toy_train.py:231-237: `g = buf1 / (eps + buf2.sqrt())`), a difference of"
        " the order of eps.",
    ),
    preview={"max_epochs": 10, "steps_per_epoch": 1000},
    module=TinyGPT,
))

MODDED_NANOGPT = register(RecipeEntry(
    name="modded-nanogpt",
    summary="The NanoGPT speedrun record #21 (2.933 min): Muon lr 0.05, momentum 0.95, Nesterov; Adam betas (0.8,"
            " 0.95), eps 1e-10, head 0.008, embeddings 0.6, scalars 0.04; no warm-up, the last 40% decaying to 10%",
    source=Source(
        authors="Jordan et al. (modded-nanogpt contributors; record #21 by Cesista)",
        year=2025,
        title="modded-nanogpt: NanoGPT speedrun, record #21 \"Reduced batch size\" (01/26/25, val loss 3.2808)",
        venue=f"github.com/KellerJordan/modded-nanogpt, commit {MODDED_NANOGPT_COMMIT}",
        where="train_gpt.py, lines 158-206 (Muon), 472-473 (run length), 530-549 (parameters, optimizers,"
              " schedule), 614-617 (momentum warm-up)",
    ),
    recipe={
        "optimizer": "Muon",
        "lr": 0.05,
        "weight_decay": 0.0,
        "optimizer_kwargs": {"momentum": 0.95, "nesterov": True, "ns_steps": 5, "adjust_lr_fn": "original"},
        "hybrid": {"optimizer": "Adam", "lr": 0.008, "weight_decay": 0.0,
                   "optimizer_kwargs": {"betas": [0.8, 0.95], "eps": 1e-10},
                   "groups": {"embedding": {"lr": 0.6}, "scalar": {"lr": 0.04}}},
        "scheduler": {"type": "wsd", "warmup": 0, "decay": "40%", "min_lr_ratio": 0.1},
    },
    numbers=(
        ("Muon lr 0.05, momentum 0.95", "train_gpt.py:540",
         "optimizer2 = Muon(hidden_matrix_params, lr=0.05, momentum=0.95, rank=rank, world_size=world_size)"),
        ("Nesterov momentum, 5 Newton-Schulz steps", "train_gpt.py:158",
         "def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, ns_steps=5, rank=0, world_size=1):"),
        ("the update scaled by sqrt(max(1, rows / cols)) (torch's adjust_lr_fn 'original': the same factor)",
         "train_gpt.py:193", "alpha=-lr * max(1, p_world.size(-2) / p_world.size(-1)) ** 0.5,"),
        ("Adam betas (0.8, 0.95), eps 1e-10, no weight decay", "train_gpt.py:539",
         "optimizer1 = torch.optim.Adam(adam_params, betas=(0.8, 0.95), eps=1e-10, fused=True)"),
        ("Adam lrs: head 0.008, embeddings 0.6, scalars 0.04", "train_gpt.py:536",
         "adam_params = [dict(params=head_params, lr=0.008), dict(params=embed_params, lr=0.6),"
         " dict(params=scalar_params, lr=0.04)]"),
        ("Muon for the blocks' matrices; Adam for embeddings, head and parameters of fewer than 2 dims",
         "train_gpt.py:530-533",
         "hidden_matrix_params = [p for n, p in model.blocks.named_parameters() if p.ndim >= 2 and \"embed\" not in"
         " n] / embed_params = [p for n, p in model.named_parameters() if \"embed\" in n] / scalar_params = [p for p"
         " in model.parameters() if p.ndim < 2] / head_params = [model.lm_head.weight]"),
        ("the lr held, then the last 40% of the run decaying linearly to 10% of it (a 'wsd' schedule:"
         " decay '40%', min_lr_ratio 0.1), the same multiplier for both optimizers", "train_gpt.py:473, 544-549",
         "cooldown_frac = 0.4 # fraction of training spent cooling down the learning rate / t = 1 - step /"
         " args.num_iterations # time remaining in training / w = min(t / args.cooldown_frac, 1.0) # 1 -> 0 /"
         " return w * 1.0 + (1 - w) * 0.1 / schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, get_lr) for opt in"
         " optimizers]"),
    ),
    choices=(
        "No warm-up (warmup 0): get_lr has none; the decay's last step runs at exactly 10% (the library's"
        " convention). The record's get_lr reaches 0.1 at step num_iterations = 1770, one past the last step it"
        " trains, whose multiplier is 0.1 + 0.9 / (0.4 x 1770) = 0.10127: every decay step here runs at the record's"
        " multiplier for the step after it (the wsd schedule's convention, Hägele et al.'s reference code).",
        "Not reproduced: Muon's momentum warm-up from 0.85 to 0.95 over the first 300 steps (train_gpt.py:615-617,"
        " `frac = min(step / 300, 1)` / `group[\"momentum\"] = (1 - frac) * 0.85 + frac * 0.95`): a recipe"
        " schedules lrs, not momentum. The recipe keeps 0.95 from the first step.",
        "Adam (not AdamW) with weight decay 0, as the record; Muon without weight decay (the record's Muon has"
        " none; torch's Muon defaults to 0.1, so the recipe sets 0).",
        "The split is `muon_split`'s: 2-D weights of hidden layers to Muon; embeddings, the head (its base lr"
        " 0.008), norms, biases and other parameters of fewer than 2 dims to Adam (the 'scalar' group at 0.04). The"
        " record has no biases and parameter-free norms; its scalars are skip and lambda weights.",
        "The record orthogonalizes a merged (3, hdim, dim) QKV weight slice by slice (a batched Newton-Schulz,"
        " train_gpt.py:116 `assert G.ndim >= 2`); torch's Muon takes 2-D matrices only, so write q, k and v as"
        " three Linear layers (the same update) or they go to Adam as 'tensor'.",
        "The run's length is the Trainer's (the record trains 1770 steps on 8 GPUs).",
    ),
    notes=(
        "The record's other speedups (FP8 head, logit soft-cap, value embeddings, U-net skips, FlexAttention"
        " windows) are the model's, not the optimizer's.",
    ),
    preview={"max_epochs": 10, "steps_per_epoch": 177},
    module=UntiedGPT,
))
