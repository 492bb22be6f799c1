"""Synthetic but learnable tasks with a fixed held-out split, and their label-prior losses.

Every task is drawn once from ``DATA_SEED`` (the same data for every model, seed and arm); a
run's seed only decides the order of its training batches.

* ``tokens`` -- classification from tokens: a sequence of ``SEQ_LEN`` ids starting with a
  ``[CLS]`` id; the label (4 classes, prior ``CLASS_PRIOR``) is the class of the "trigger"
  tokens that occur in it (1-3 triggers of one class among uniform filler tokens), so the label
  is a function of which tokens occur. Achievable loss 0.
* ``markov`` -- language modelling of a Markov chain over ``N_STATES`` tokens whose transition
  matrix is random and sparse (``SUCCESSORS`` successors per state, Dirichlet(1) weights): the
  prior loss (the train unigram) and the achievable loss (the chain's own transition
  probabilities on the held-out transitions) are both known.
* ``markov_s2s`` -- the same chain as sequence-to-sequence: the first half of a sequence in, the
  second half out (the first output token follows the last input token).
* ``digits`` -- scikit-learn's 8x8 digits, upsampled to 32x32 (bilinear), 3 channels,
  standardized with the train split's mean and std; 80/20 split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

DATA_SEED = 1234
N_SPECIAL = 3  # ids 0 (pad), 1 ([CLS] / bos), 2 (eos / sep); content tokens start at 3
PAD, CLS = 0, 1
N_STATES = 64
VOCAB = N_SPECIAL + N_STATES
SEQ_LEN = 32
CLASS_PRIOR = (0.4, 0.3, 0.2, 0.1)
TRIGGERS_PER_CLASS = 3
SUCCESSORS = 3
PRIOR_SMOOTHING = 0.5  # pseudo-count per content token in the LM's train unigram


@dataclass
class Task:
    """One task: train and held-out tensors, the target space and the reference losses.

    Attributes:
        name: task name (``tokens``, ``markov``, ``markov_s2s``, ``digits``).
        train: tensors of the train split (first dim = examples).
        held: tensors of the held-out split.
        n_out: classes or vocabulary size of the targets.
        prior_loss: cross-entropy on the held-out targets of the label prior fitted to the
            TRAIN targets.
        achievable: the best possible held-out loss when known (``None`` otherwise).
        info: a short description for the JSON.
    """

    name: str
    train: tuple[torch.Tensor, ...]
    held: tuple[torch.Tensor, ...]
    n_out: int
    prior_loss: float
    achievable: float | None
    info: dict = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return int(self.train[0].shape[0])

    def rows(self, split: str, idx: torch.Tensor | slice) -> tuple[torch.Tensor, ...]:
        """The rows ``idx`` of ``split`` ("train" or "held")."""
        src = self.train if split == "train" else self.held
        return tuple(t[idx].contiguous() for t in src)


def _prior_ce(train_targets: torch.Tensor, held_targets: torch.Tensor, n_out: int,
              smoothing: float = 0.0, first: int = 0) -> float:
    counts = torch.bincount(train_targets.reshape(-1), minlength=n_out).double()
    counts[first:] += smoothing
    logp = torch.log(counts / counts.sum())
    return float(-logp[held_targets.reshape(-1)].mean())


def token_task(n_train: int = 4096, n_held: int = 512) -> Task:
    """Classification from tokens (see the module docstring)."""
    rng = np.random.default_rng(DATA_SEED)
    n_cls = len(CLASS_PRIOR)
    content = np.arange(N_SPECIAL, VOCAB)
    perm = rng.permutation(content)
    triggers = perm[: n_cls * TRIGGERS_PER_CLASS].reshape(n_cls, TRIGGERS_PER_CLASS)
    filler = perm[n_cls * TRIGGERS_PER_CLASS:]
    n = n_train + n_held
    y = rng.choice(n_cls, size=n, p=np.asarray(CLASS_PRIOR))
    x = rng.choice(filler, size=(n, SEQ_LEN))
    x[:, 0] = CLS
    for i in range(n):
        k = rng.integers(1, 4)
        pos = rng.choice(np.arange(1, SEQ_LEN), size=k, replace=False)
        x[i, pos] = rng.choice(triggers[y[i]], size=k)
    xt, yt = torch.from_numpy(x).long(), torch.from_numpy(y).long()
    train, held = (xt[:n_train], yt[:n_train]), (xt[n_train:], yt[n_train:])
    prior = _prior_ce(train[1], held[1], n_cls)
    info = {"classes": n_cls, "class_prior": list(CLASS_PRIOR), "seq_len": SEQ_LEN,
            "vocab": VOCAB, "n_train": n_train, "n_held": n_held}
    return Task("tokens", train, held, n_cls, prior, 0.0, info)


def markov_chain() -> np.ndarray:
    """The task's fixed sparse transition matrix ``P`` (N_STATES x N_STATES, rows sum to 1)."""
    rng = np.random.default_rng(DATA_SEED + 1)
    P = np.zeros((N_STATES, N_STATES))
    for s in range(N_STATES):
        nxt = rng.choice(N_STATES, size=SUCCESSORS, replace=False)
        P[s, nxt] = rng.dirichlet(np.ones(SUCCESSORS))
    return P


def _sample_chain(P: np.ndarray, n: int, length: int, rng: np.random.Generator,
                  burn_in: int = 16) -> np.ndarray:
    cum = np.cumsum(P, axis=1)
    s = rng.integers(0, N_STATES, size=n)
    out = np.empty((n, length), dtype=np.int64)
    for t in range(burn_in + length):
        u = rng.random(n)[:, None]
        s = np.minimum((u > cum[s]).sum(1), N_STATES - 1)
        if t >= burn_in:
            out[:, t - burn_in] = s
    return out + N_SPECIAL


def _transition_ce(P: np.ndarray, seqs: np.ndarray) -> float:
    a, b = seqs[:, :-1] - N_SPECIAL, seqs[:, 1:] - N_SPECIAL
    return float(-np.log(P[a, b]).mean())


def markov_task(n_train: int = 2048, n_held: int = 256, seq2seq: bool = False) -> Task:
    """The Markov-chain LM (``seq2seq=False``) or its seq2seq split (see the module docstring)."""
    P = markov_chain()
    rng = np.random.default_rng(DATA_SEED + 2)
    seqs = _sample_chain(P, n_train + n_held, SEQ_LEN, rng)
    rate = -np.nansum(np.where(P > 0, P * np.log(np.where(P > 0, P, 1.0)), 0.0), axis=1)
    info = {"states": N_STATES, "successors": SUCCESSORS, "seq_len": SEQ_LEN, "vocab": VOCAB,
            "n_train": n_train, "n_held": n_held,
            "mean_row_entropy": float(rate.mean())}
    t = torch.from_numpy(seqs)
    if not seq2seq:
        train, held = (t[:n_train],), (t[n_train:],)
        prior = _prior_ce(train[0][:, 1:], held[0][:, 1:], VOCAB, PRIOR_SMOOTHING, N_SPECIAL)
        best = _transition_ce(P, seqs[n_train:])
        return Task("markov", train, held, VOCAB, prior, best, info)
    h = SEQ_LEN // 2
    train, held = (t[:n_train, :h], t[:n_train, h:]), (t[n_train:, :h], t[n_train:, h:])
    prior = _prior_ce(train[1], held[1], VOCAB, PRIOR_SMOOTHING, N_SPECIAL)
    best = _transition_ce(P, seqs[n_train:, h - 1:])
    return Task("markov_s2s", train, held, VOCAB, prior, best, info)


def digits_task(size: int = 32, held_fraction: float = 0.2) -> Task:
    """scikit-learn's digits, upsampled to ``size`` x ``size``, 3 channels, fixed 80/20 split."""
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.from_numpy(raw.images.astype(np.float32))[:, None] / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(raw.target.astype(np.int64))
    perm = torch.from_numpy(np.random.default_rng(DATA_SEED).permutation(len(y)))
    n_held = int(math.floor(held_fraction * len(y)))
    tr, he = perm[n_held:], perm[:n_held]
    mean, std = x[tr].mean(), x[tr].std()
    x = (x - mean) / std
    train, held = (x[tr], y[tr]), (x[he], y[he])
    prior = _prior_ce(train[1], held[1], 10)
    info = {"classes": 10, "image": [3, size, size], "n_train": len(tr), "n_held": len(he)}
    return Task("digits", train, held, 10, prior, None, info)


TASKS = {
    "tokens": token_task,
    "markov": markov_task,
    "markov_s2s": lambda: markov_task(seq2seq=True),
    "digits": digits_task,
}
