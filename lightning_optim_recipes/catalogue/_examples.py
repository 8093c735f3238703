"""Small example models the catalogue's recipes are written for: the parameter names and module types that a recipe's
``no_decay`` rule, ``overrides`` and layer-wise decay read, in models small enough to preview and train on a CPU.

Each class is built without arguments (``RecipeEntry.module``) and has a working ``forward``, so it can also be
fine-tuned in a test or a notebook. The names follow the reference implementations: timm's ViT (``patch_embed``,
``cls_token``, ``pos_embed``, ``blocks.N``, ``norm``, ``head``), Hugging Face's BERT (``embeddings.*``,
``encoder.layer.N``, ``pooler``, ``classifier``), nanoGPT (``transformer.wte``, ``transformer.h.N``, ``lm_head``
tied to ``wte``), Meta's LLaMA (``tok_embeddings``, ``layers.N``, RMSNorm ``attention_norm``/``ffn_norm``,
``output``) and torchvision's ResNet (``conv1``, ``bn1``, ``layer1.0``, ``fc``).

Example:
    >>> import torch
    >>> vit = TinyViT()
    >>> vit(torch.randn(2, 3, 8, 8)).shape
    torch.Size([2, 4])
    >>> [name for name, _ in vit.named_parameters()][:4]
    ['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias']
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["CriticGenerator", "EncoderDecoder", "TinyBert", "TinyGPT", "TinyLlama", "TinyResNet", "TinyViT", "UntiedGPT"]


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, causal: bool = False) -> torch.Tensor:
    """Multi-head scaled dot-product attention of (batch, tokens, dim) tensors."""
    b, t, d = q.shape
    q, k, v = (x.view(b, t, heads, d // heads).transpose(1, 2) for x in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal).transpose(1, 2).reshape(b, t, d)


# ------------------------------------------------------------------------------------------------------------ GANs


class CriticGenerator(nn.Module):
    """A critic (discriminator) and a generator of 2-d points: the submodules ``critic`` and ``generator`` that the
    GAN recipes' optimizers train."""

    def __init__(self, latent: int = 2, hidden: int = 16) -> None:
        super().__init__()
        self.latent = latent
        self.critic = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        self.generator = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(noise)


# -------------------------------------------------------------------------------------------------------- language


class _BertSelfAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)


class _DenseLayerNorm(nn.Module):
    def __init__(self, inputs: int, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(inputs, dim)
        self.LayerNorm = nn.LayerNorm(dim)  # noqa: N815 - Hugging Face's name

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dense(x))


class _BertAttention(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.self = _BertSelfAttention(dim)
        self.output = _DenseLayerNorm(dim, dim)


class _BertLayer(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention = _BertAttention(dim)
        self.intermediate = nn.ModuleDict({"dense": nn.Linear(dim, 2 * dim)})
        self.output = _DenseLayerNorm(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.attention.self
        mixed = _attend(attention.query(x), attention.key(x), attention.value(x), self.heads)
        x = self.attention.output(mixed, x)
        return self.output(F.gelu(self.intermediate["dense"](x)), x)


class _BertEncoder(nn.Module):
    def __init__(self, dim: int, heads: int, layers: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList([_BertLayer(dim, heads) for _ in range(layers)])


class TinyBert(nn.Module):
    """A 2-layer BERT for sequence classification, with Hugging Face's parameter names (``embeddings.*``,
    ``encoder.layer.N``, ``pooler.dense``, ``classifier``); token ids in, class logits out."""

    def __init__(self, vocab: int = 32, dim: int = 8, layers: int = 2, heads: int = 2, tokens: int = 16,
                 classes: int = 2) -> None:
        super().__init__()
        self.embeddings = nn.ModuleDict({
            "word_embeddings": nn.Embedding(vocab, dim), "position_embeddings": nn.Embedding(tokens, dim),
            "token_type_embeddings": nn.Embedding(2, dim), "LayerNorm": nn.LayerNorm(dim),
        })
        self.encoder = _BertEncoder(dim, heads, layers)
        self.pooler = nn.ModuleDict({"dense": nn.Linear(dim, dim)})
        self.classifier = nn.Linear(dim, classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        emb = self.embeddings
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = emb["word_embeddings"](ids) + emb["position_embeddings"](positions) + emb["token_type_embeddings"](
            torch.zeros_like(ids))
        x = emb["LayerNorm"](x)
        for layer in self.encoder.layer:
            x = layer(x)
        return self.classifier(torch.tanh(self.pooler["dense"](x[:, 0])))


class _GPTBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.ModuleDict({"c_attn": nn.Linear(dim, 3 * dim), "c_proj": nn.Linear(dim, dim)})
        self.mlp = nn.ModuleDict({"c_fc": nn.Linear(dim, 4 * dim), "c_proj": nn.Linear(4 * dim, dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.attn["c_attn"](self.ln_1(x)).chunk(3, dim=-1)
        x = x + self.attn["c_proj"](_attend(q, k, v, self.heads, causal=True))
        return x + self.mlp["c_proj"](F.gelu(self.mlp["c_fc"](self.ln_2(x))))


class _GPTTransformer(nn.Module):
    def __init__(self, vocab: int, dim: int, layers: int, heads: int, tokens: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(tokens, dim)
        self.h = nn.ModuleList([_GPTBlock(dim, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)


class TinyGPT(nn.Module):
    """A 2-block GPT with nanoGPT's parameter names (``transformer.wte``, ``transformer.wpe``, ``transformer.h.N``,
    ``transformer.ln_f``; ``lm_head`` tied to ``wte`` unless ``tied=False``); token ids in, next-token logits out."""

    def __init__(self, vocab: int = 32, dim: int = 8, layers: int = 2, heads: int = 2, tokens: int = 16,
                 tied: bool = True) -> None:
        super().__init__()
        self.transformer = _GPTTransformer(vocab, dim, layers, heads, tokens)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        if tied:  # weight tying, as nanoGPT (model.py:138); the modded-nanogpt record unties them
            self.transformer.wte.weight = self.lm_head.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.transformer
        x = t.wte(ids) + t.wpe(torch.arange(ids.shape[1], device=ids.device))
        for block in t.h:
            x = block(x)
        return self.lm_head(t.ln_f(x))


class _LlamaBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention = nn.ModuleDict({name: nn.Linear(dim, dim, bias=False) for name in ("wq", "wk", "wv", "wo")})
        self.feed_forward = nn.ModuleDict({"w1": nn.Linear(dim, 2 * dim, bias=False),
                                           "w2": nn.Linear(2 * dim, dim, bias=False),
                                           "w3": nn.Linear(dim, 2 * dim, bias=False)})
        self.attention_norm, self.ffn_norm = nn.RMSNorm(dim), nn.RMSNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, h = self.attention, self.attention_norm(x)
        x = x + a["wo"](_attend(a["wq"](h), a["wk"](h), a["wv"](h), self.heads, causal=True))
        f, h = self.feed_forward, self.ffn_norm(x)
        return x + f["w2"](F.silu(f["w1"](h)) * f["w3"](h))


class TinyLlama(nn.Module):
    """A 2-block LLaMA with Meta's parameter names (``tok_embeddings``, ``layers.N`` with bias-free projections and
    RMSNorm ``attention_norm``/``ffn_norm``, ``norm``, ``output``); no rotary embeddings (the recipe reads names and
    shapes, not positions). Token ids in, next-token logits out."""

    def __init__(self, vocab: int = 32, dim: int = 8, layers: int = 2, heads: int = 2) -> None:
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([_LlamaBlock(dim, heads) for _ in range(layers)])
        self.norm = nn.RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.tok_embeddings(ids)
        for layer in self.layers:
            x = layer(x)
        return self.output(self.norm(x))


# ---------------------------------------------------------------------------------------------------------- vision


class _ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.ModuleDict({"qkv": nn.Linear(dim, 3 * dim), "proj": nn.Linear(dim, dim)})
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(dim, 2 * dim), "fc2": nn.Linear(2 * dim, dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.attn["qkv"](self.norm1(x)).chunk(3, dim=-1)
        x = x + self.attn["proj"](_attend(q, k, v, self.heads))
        return x + self.mlp["fc2"](F.gelu(self.mlp["fc1"](self.norm2(x))))


class _PatchEmbed(nn.Module):
    def __init__(self, dim: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)


class TinyViT(nn.Module):
    """A 2-block ViT with timm's parameter names (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N``,
    ``norm``, ``head``); 3 x 8 x 8 images in 4 x 4 patches, class logits out."""

    def __init__(self, image: int = 8, patch: int = 4, dim: int = 8, depth: int = 2, heads: int = 2,
                 classes: int = 4) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.patch_embed = _PatchEmbed(dim, patch)
        self.blocks = nn.Sequential(*[_ViTBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed.proj(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class _BasicBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class TinyResNet(nn.Module):
    """A one-block ResNet with torchvision's parameter names (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
    ``fc``): convolutions without biases, BatchNorm, a linear classifier with one; 3-channel images in."""

    def __init__(self, channels: int = 4, classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(_BasicBlock(channels))
        self.fc = nn.Linear(channels, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.layer1(F.relu(self.bn1(self.conv1(images))))
        return self.fc(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------------------------------------- classic


class EncoderDecoder(nn.Module):
    """An encoder (a linear layer and a LayerNorm) and a decoder (a 2-layer MLP): the two networks of the
    ``encoder-decoder`` recipe's two learning rates."""

    def __init__(self, features: int = 4, hidden: int = 8, outputs: int = 1) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(features, hidden), nn.LayerNorm(hidden))
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.relu(self.encoder(x)))


class UntiedGPT(TinyGPT):
    """`TinyGPT` with its embedding and head untied, as the modded-nanogpt record trains them."""

    def __init__(self) -> None:
        super().__init__(tied=False)
