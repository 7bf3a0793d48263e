"""Shared pieces of the seq2seq tasks: vocabularies, padding, decoding, metrics, and the
attention showcase. Token conventions (PAD, BOS, EOS) are rnnbench.tasks.base's."""

from __future__ import annotations

import numpy as np

from rnnbench.tasks.base import BOS, EOS, PAD, xent_np

SPECIALS = ("<pad>", "<bos>", "<eos>")


class Vocab:
    """Symbols <-> ids, ids 0-2 being PAD, BOS and EOS."""

    def __init__(self, symbols):
        self.symbols = list(SPECIALS) + list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, seqs, length: int, eos: bool) -> np.ndarray:
        """Sequences of symbols -> ids (N, length), right-padded, EOS appended if asked."""
        out = np.full((len(seqs), length), PAD, dtype=np.int64)
        for i, seq in enumerate(seqs):
            ids = [self.index[s] for s in seq] + ([EOS] if eos else [])
            if len(ids) > length:
                raise ValueError(f"sequence {seq!r} is longer than {length}")
            out[i, :len(ids)] = ids
        return out

    def decode(self, ids) -> list[str]:
        """Ids up to and including the first EOS (pads dropped), as symbols."""
        out = []
        for i in ids:
            if i == PAD:
                continue
            out.append(self.symbols[i])
            if i == EOS:
                break
        return out


def predicted_ids(logits: np.ndarray) -> np.ndarray:
    return logits.argmax(-1)


def exact_match(pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per example: every target position up to and including EOS predicted right."""
    keep = y != PAD
    return ((pred == y) | ~keep).all(axis=1)


def seq2seq_metrics(logits: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred, keep = predicted_ids(logits), y != PAD
    return {"loss": xent_np(logits, y, ignore_index=PAD),
            "exact_match": float(exact_match(pred, y).mean()),
            "char_accuracy": float((pred == y)[keep].mean())}


def by_group(values: np.ndarray, groups: np.ndarray, labels: dict | None = None) -> dict:
    """Mean of values per group, groups in sorted order, keys as text."""
    return {str(labels[g] if labels else g): float(values[groups == g].mean())
            for g in np.unique(groups)}


def attention_showcase(model, split: dict, in_vocab: Vocab, out_vocab: Vocab, title: str,
                       n: int = 3) -> dict | None:
    """Attention maps of the first n test examples, when the model has attention."""
    if not getattr(model, "attention", False):
        return None
    import torch  # the trained model's showcase: the only part of a task that runs torch

    p = next(model.parameters())
    x = torch.from_numpy(split["x"][:n]).to(p.device)
    weights = model.attention_weights(x).cpu().double().numpy()
    with torch.no_grad():
        logits = model(x).cpu().numpy()
    examples = []
    for i in range(len(x)):
        src = in_vocab.decode(split["x"][i])
        out = out_vocab.decode(logits[i].argmax(-1))
        examples.append({"input": src, "output": out,
                         "weights": weights[i, :len(out), :len(src)].round(4).tolist()})
    return {"kind": "attention", "title": title, "examples": examples}


__all__ = ["BOS", "EOS", "PAD", "Vocab", "attention_showcase", "by_group", "exact_match",
           "seq2seq_metrics"]
