"""Character-level language modelling on real text: predict each next character.

The text is, by default, a fixed selection of the running interpreter's own standard-library
source files (read from sysconfig.get_paths()["stdlib"], concatenated in sorted order), or any
UTF-8 file named in `text_file`; it is cut to `max_chars` characters. The task follows the
character-level setting of Karpathy, Johnson & Fei-Fei (2015), "Visualizing and Understanding
Recurrent Networks" (their Linux-source corpus), scored in bits per character (bpc).

The text is split contiguously: train first, then validation, then test. The vocabulary is the
sorted set of training characters plus one UNK id (the last) for characters seen only in val or
test. Each split's text is cut into `streams` equal contiguous streams, and each stream into
chunks of `bptt` characters; rows are laid out chunk-major (row k * streams + s is chunk k of
stream s), so a training loop that takes `streams` rows at a time in order and carries the
hidden state reads every stream continuously (truncated BPTT). x holds the ids, y the id of the
character that follows each one.

Baselines are fitted on the training text with add-one (Laplace) smoothing over the vocabulary
and scored on the test split's targets: a unigram model (the main entry) and a bigram model.
The data is fixed text, so the seed leaves it unchanged; the sha256 of the text, its length,
the files and the Python version are recorded by source().
"""

from __future__ import annotations

import hashlib
import math
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import Field, model_validator

from rnnbench.tasks.base import Task, TaskConfig, TaskSpec, xent_np

if TYPE_CHECKING:
    import torch

# Well-known, stable, pure-Python modules (about 320k characters on Python 3.11), sorted.
STDLIB_FILES = ("argparse.py", "contextlib.py", "difflib.py", "functools.py", "heapq.py",
                "shlex.py", "string.py", "textwrap.py")
UNK_GLYPH = "\ufffd"  # how an unknown character (UNK) is shown in sampled text


class CharsConfig(TaskConfig):
    files: tuple[str, ...] = STDLIB_FILES  # standard-library paths, relative to its folder
    text_file: str | None = None  # any UTF-8 file instead of the standard-library files
    max_chars: Annotated[int, Field(gt=0)] = 300_000  # the text is cut to this many characters
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1  # after the training text
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1  # at the end of the text
    streams: Annotated[int, Field(gt=0)] = 64  # parallel streams per batch (rows per chunk)
    bptt: Annotated[int, Field(gt=0)] = 32  # characters per chunk (truncated BPTT length)
    # Defaults: the bigram model scores 3.37 bpc on the test text and the unigram 4.31; 3.0 is
    # clearly below the bigram, and reached by a 64-unit LSTM or GRU in about 600 steps.
    solved_bpc: Annotated[float, Field(gt=0)] = 3.0  # test bpc that counts as solved
    temperature: Annotated[float, Field(gt=0)] = 0.8  # of the showcase's sampling
    sample_chars: Annotated[int, Field(gt=0)] = 300  # characters the showcase samples
    prompt_chars: Annotated[int, Field(gt=0)] = 40  # characters of test text it starts from

    @model_validator(mode="after")
    def _fits(self) -> CharsConfig:
        if self.text_file is None:
            if not self.files:
                raise ValueError("files = []: name at least one standard-library file "
                                 "(or set text_file)")
            root = Path(sysconfig.get_paths()["stdlib"])
            for name in self.files:
                if Path(name).is_absolute() or not (root / name).is_file():
                    raise ValueError(f"files: {name!r} is not a file under the standard "
                                     f"library folder {root}")
        elif not Path(self.text_file).is_file():
            raise ValueError(f"text_file = {self.text_file!r}: no such file")
        check_sizes(self, self.max_chars, "max_chars")
        return self


def check_sizes(cfg: CharsConfig, n_chars: int, what: str) -> None:
    """Every split must give each stream at least one chunk (bptt inputs plus the next char)."""
    if cfg.val_fraction + cfg.test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction = {cfg.val_fraction + cfg.test_fraction}:"
                         " leaves no training text")
    need = cfg.streams * cfg.bptt + 1
    for split, length in split_lengths(cfg, n_chars).items():
        if length < need:
            raise ValueError(f"{what} = {n_chars}: the {split} text would have {length} "
                             f"characters, fewer than streams x bptt + 1 = {need}")


def split_lengths(cfg: CharsConfig, n: int) -> dict[str, int]:
    n_test, n_val = round(n * cfg.test_fraction), round(n * cfg.val_fraction)
    return {"train": n - n_val - n_test, "val": n_val, "test": n_test}


def read_utf8(path: Path, shown: str) -> str:
    """The file's text, exactly (no newline translation); a one-line error naming it."""
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ValueError(f"{shown}: no such file") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{shown}: not UTF-8 text (byte {e.start}: {e.reason})") from None


@lru_cache(maxsize=4)
def _load(files: tuple[str, ...], text_file: str | None, max_chars: int) -> tuple[str, list[str]]:
    if text_file is not None:
        return read_utf8(Path(text_file), f"text_file {text_file!r}")[:max_chars], [text_file]
    root = Path(sysconfig.get_paths()["stdlib"])
    names = sorted(files)
    text = "".join(read_utf8(root / n, f"standard-library file {n!r} ({root / n})")
                   for n in names)
    return text[:max_chars], names


def load_text(cfg: CharsConfig) -> tuple[str, list[str]]:
    """(the text cut to max_chars, the files it was read from)."""
    return _load(tuple(cfg.files), cfg.text_file, cfg.max_chars)


def split_texts(cfg: CharsConfig) -> dict[str, str]:
    text = load_text(cfg)[0]
    check_sizes(cfg, len(text), "the text's length")
    n = split_lengths(cfg, len(text))
    a, b = n["train"], n["train"] + n["val"]
    return {"train": text[:a], "val": text[a:b], "test": text[b:]}


def vocabulary(cfg: CharsConfig) -> list[str]:
    """The training text's characters, sorted; the id len(vocabulary) is UNK."""
    return sorted(set(split_texts(cfg)["train"]))


def encode(text: str, vocab: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(vocab)}
    unk = len(vocab)
    return np.fromiter((index.get(c, unk) for c in text), dtype=np.int64, count=len(text))


def decode(ids, vocab: list[str]) -> str:
    return "".join(vocab[i] if i < len(vocab) else UNK_GLYPH for i in ids)


def chunk_streams(ids: np.ndarray, streams: int, bptt: int) -> dict[str, np.ndarray]:
    """ids -> x, y (rows, bptt), chunk-major: row k * streams + s is chunk k of stream s. Stream
    s starts at s * S (S = (len - 1) // streams) and reads K * bptt inputs, K = S // bptt."""
    per_stream = (len(ids) - 1) // streams
    k = per_stream // bptt
    starts = np.arange(streams)[:, None] * per_stream + np.arange(k * bptt)[None, :]

    def rows(a: np.ndarray) -> np.ndarray:  # (streams, K * bptt) -> (K * streams, bptt)
        return a.reshape(streams, k, bptt).transpose(1, 0, 2).reshape(k * streams, bptt)
    return {"x": rows(ids[starts]), "y": rows(ids[starts + 1])}


def bigram_counts(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    counts = np.zeros((vocab_size, vocab_size), dtype=np.int64)
    np.add.at(counts, (ids[:-1], ids[1:]), 1)
    return counts


class Chars(Task):
    name = "chars"
    Config = CharsConfig

    def spec(self, cfg: CharsConfig) -> TaskSpec:
        vocab = len(vocabulary(cfg)) + 1
        what = f"text file {cfg.text_file}" if cfg.text_file else "Python standard-library source"
        return TaskSpec(
            name=self.name, shape="many_to_many", input_size=vocab, output_size=vocab,
            loss="xent", readout="all", metric="bpc", higher_is_better=False,
            solved_threshold=cfg.solved_bpc,
            definition=f"character-level language modelling (Karpathy et al. 2015) on {what}, "
                       f"{cfg.streams} streams x {cfg.bptt}-character chunks",
            input_vocab=vocab, causal=True, streams=cfg.streams, real_data=True,
        )

    def generate(self, cfg: CharsConfig, seed: int) -> dict:
        # Fixed text: the seed plays no part, and every seed gives the same splits.
        vocab = vocabulary(cfg)
        return {s: chunk_streams(encode(t, vocab), cfg.streams, cfg.bptt)
                for s, t in split_texts(cfg).items()}

    def baseline(self, cfg: CharsConfig, splits: dict) -> dict:
        """Unigram and bigram models of the training text (add-one smoothing over the vocab,
        UNK included), scored on the test split's targets."""
        vocab = vocabulary(cfg)
        size = len(vocab) + 1
        train = encode(split_texts(cfg)["train"], vocab)
        test_x, test_y = splits["test"]["x"].ravel(), splits["test"]["y"].ravel()
        uni = (np.bincount(train, minlength=size) + 1.0) / (len(train) + size)
        uni_loss = float(-np.log(uni[test_y]).mean())
        big = bigram_counts(train, size) + 1.0
        big /= big.sum(axis=1, keepdims=True)
        big_loss = float(-np.log(big[test_x, test_y]).mean())
        return {"name": "unigram frequencies of the training text (add-one)",
                "loss": uni_loss, "bpc": uni_loss / math.log(2),
                "bpc_bigram": big_loss / math.log(2)}

    def metrics(self, cfg: CharsConfig, pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
        loss = xent_np(pred, y)
        return {"loss": loss, "bpc": loss / math.log(2)}

    def source(self, cfg: CharsConfig) -> dict:
        text, files = load_text(cfg)
        return {"kind": "dataset", "origin": "text_file" if cfg.text_file else "python stdlib",
                "files": files, "python": sys.version.split()[0],
                "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                "characters": len(text)}

    def showcase(self, cfg: CharsConfig, model: torch.nn.Module, splits: dict,
                 seed: int) -> dict:
        """Text sampled from the model at cfg.temperature after a prompt of test text."""
        vocab = vocabulary(cfg)
        x = splits["test"]["x"]
        stream0 = x[::cfg.streams].ravel()  # stream 0's chunks in order: the test text's start
        prompt = stream0[:cfg.prompt_chars]
        ids = sample(model, prompt, cfg.sample_chars, cfg.temperature, seed, len(vocab) + 1)
        return {"kind": "text",
                "title": f"{cfg.sample_chars} characters sampled at temperature "
                         f"{cfg.temperature} after {len(prompt)} characters of test text",
                "text": decode(prompt.tolist() + ids, vocab)}


def sample(model: torch.nn.Module, prompt: np.ndarray, n: int, temperature: float, seed: int,
           vocab_size: int) -> list[int]:
    """n ids sampled one at a time from a RecurrentNet (its core and head), carrying the core's
    state from the prompt on; seeded, on the model's device and dtype."""
    import torch  # the trained model's showcase: the only part of a task that runs torch

    p = next(model.parameters())
    gen = torch.Generator(device=p.device).manual_seed(seed)

    def one_hot(ids) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=p.device)
        return torch.nn.functional.one_hot(t, vocab_size).to(p.dtype)[None]  # (1, T, V)

    ids: list[int] = []
    with torch.no_grad():
        out, h = model.core(one_hot(prompt), None)
        for _ in range(n):
            logits = model.head(out[:, -1]).double() / temperature  # (1, V)
            nxt = int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=gen))
            ids.append(nxt)
            out, h = model.core(one_hot([nxt]), h)
    return ids


TASK = Chars()
