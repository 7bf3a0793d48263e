"""Encoder-decoder models (Sutskever, Vinyals & Le 2014; Cho et al. 2014), optionally with additive
attention (Bahdanau, Cho & Bengio 2015), for seq2seq tasks.

Inputs are token ids (B, T_in), right-padded with PAD; the encoder reads each sequence only up to
its length (packed sequences), so padding changes nothing. The decoder starts from the encoder's
final state (through a tanh bridge when the encoder is bidirectional: per layer, the forward and
backward final states, concatenated, map to one state) and emits `spec.output_len` tokens. With
attention, each step's context is a weighted sum of the encoder states, the weights a softmax
over the non-pad input positions of v^T tanh(W_enc e_j + W_dec s_{t-1}); the context joins the
token embedding at the decoder's input and the state at its output layer.

Training passes the targets: each step is fed the true previous token with probability
`teacher_forcing`, else the model's own greedy choice. Evaluation decodes greedily.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnbench.tasks.base import BOS, PAD, TaskSpec


class Seq2Seq(nn.Module):
    """rnnbench.models.contract.SequenceModel: takes the targets while training, no carried
    state, nothing to compile."""

    takes_targets = True
    stateful = False

    def reset_state(self) -> None:
        pass

    def precompile(self) -> float:
        return 0.0

    def __init__(self, cfg, spec: TaskSpec):
        super().__init__()
        e, h, layers = cfg.embed_size, cfg.hidden_size, cfg.num_layers
        self.dirs = 2 if cfg.bidirectional else 1
        self.attention = cfg.attention
        self.teacher_forcing = cfg.teacher_forcing
        self.output_len = spec.output_len
        cell = nn.GRU if cfg.cell == "gru" else nn.LSTM
        self.lstm = cfg.cell == "lstm"
        self.src_embed = nn.Embedding(spec.input_vocab, e, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(spec.output_size, e, padding_idx=PAD)
        self.encoder = cell(e, h, layers, batch_first=True, bidirectional=cfg.bidirectional)
        ctx = self.dirs * h if self.attention else 0
        self.decoder = cell(e + ctx, h, layers, batch_first=True)
        # one bridge for h (and one for the LSTM's c) when the encoder is bidirectional
        self.bridges = nn.ModuleList(nn.Linear(2 * h, h) for _ in range(
            (2 if self.lstm else 1) if cfg.bidirectional else 0))
        if self.attention:
            self.att_enc = nn.Linear(self.dirs * h, h, bias=False)
            self.att_dec = nn.Linear(h, h)
            self.att_v = nn.Linear(h, 1, bias=False)
        self.out = nn.Linear(h + ctx, spec.output_size)

    def encode(self, x: torch.Tensor):
        """x (B, T_in) ids -> encoder states (B, T_in, dirs*H), pad mask (B, T_in), the
        decoder's initial state."""
        mask = x != PAD
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.src_embed(x), lengths, batch_first=True,
                                                   enforce_sorted=False)
        out, state = self.encoder(packed)
        enc, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True,
                                                  total_length=x.shape[1])
        states = list(state) if self.lstm else [state]
        if self.dirs == 2:  # (L*2, B, H) -> (L, B, 2H) -> bridge -> (L, B, H)
            states = [torch.tanh(bridge(torch.cat([s[0::2], s[1::2]], dim=-1)))
                      for bridge, s in zip(self.bridges, states, strict=True)]
        return enc, mask, (tuple(states) if self.lstm else states[0])

    def _attend(self, keys, enc, mask, state):
        top = (state[0] if self.lstm else state)[-1]  # (B, H): the top layer's last state
        scores = self.att_v(torch.tanh(keys + self.att_dec(top)[:, None])).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        return torch.bmm(weights[:, None], enc).squeeze(1), weights  # (B, dirs*H), (B, T_in)

    def decode(self, x: torch.Tensor, y: torch.Tensor | None = None):
        """Logits (B, output_len, V) and attention weights (B, output_len, T_in) or None."""
        enc, mask, state = self.encode(x)
        keys = self.att_enc(enc) if self.attention else None
        token = torch.full((len(x),), BOS, dtype=torch.long, device=x.device)
        logits, weights = [], []
        for t in range(self.output_len):
            inp = self.tgt_embed(token)
            if self.attention:
                ctx, w = self._attend(keys, enc, mask, state)
                inp = torch.cat([inp, ctx], dim=-1)
                weights.append(w)
            out, state = self.decoder(inp[:, None], state)
            out = out[:, 0]
            step = self.out(torch.cat([out, ctx], dim=-1) if self.attention else out)
            logits.append(step)
            token = step.argmax(-1)
            if y is not None and float(torch.rand(())) < self.teacher_forcing:
                token = y[:, t]
        return torch.stack(logits, 1), (torch.stack(weights, 1) if weights else None)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(x, y)[0]

    @torch.no_grad()
    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Greedy decoding's attention weights (B, output_len, T_in)."""
        if not self.attention:
            raise ValueError("this encoder-decoder has no attention (attention: false)")
        return self.decode(x)[1]

