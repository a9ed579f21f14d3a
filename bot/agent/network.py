"""The Q-network: an MLP trunk with a dueling head and input standardisation inside (so a
checkpoint carries it), plus its Huber-loss backward pass written out by hand."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["QNetwork", "EnsembleQ"]


class QNetwork(nn.Module):
    """Q(s, .) for every action."""

    def __init__(self, state_dim: int, n_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(state_dim))
        self.register_buffer("std", torch.ones(state_dim))
        layers: list[nn.Module] = []
        width = state_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.value = nn.Linear(width, 1)              # dueling: state value V(s)
        self.advantage = nn.Linear(width, n_actions)  # dueling: advantages A(s, a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.trunk(((x - self.mean) / self.std).clamp(-10.0, 10.0))
        adv = self.advantage(z)
        return self.value(z) + adv - adv.mean(dim=1, keepdim=True)

    def huber_grads(self, states: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, *,
                    with_loss: bool = True) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """Huber loss of Q(s, a) against `targets` (if `with_loss`), and its gradient for every
        parameter (in `parameters()` order), written out by hand.

        Deviation (speed): on batches of 64 through a 64x64 net, autograd's bookkeeping costs
        more than the arithmetic; this backward pass is the same arithmetic (a test checks it
        against autograd) at less than half the cost.
        """
        if not hasattr(self, "_layers"):   # parameters and transposed views, fetched once: the
            # optimiser updates them in place, so the views stay current
            self._layers = [(m.weight, m.weight.t(), m.bias) for m in self.trunk if isinstance(m, nn.Linear)]
            self._heads = (self.value.weight, self.value.weight.t(), self.value.bias,
                           self.advantage.weight, self.advantage.weight.t(), self.advantage.bias)
        w_v, w_v_t, b_v, w_a, w_a_t, b_a = self._heads
        with torch.no_grad():
            inputs, pre = [((states - self.mean) / self.std).clamp(-10.0, 10.0)], []
            for _, w_t, b in self._layers:                        # forward through the trunk
                pre.append(torch.addmm(b, inputs[-1], w_t))
                inputs.append(pre[-1].clamp_min(0.0))
            h = inputs.pop()
            adv = torch.addmm(b_a, h, w_a_t)
            q = torch.addmm(b_v, h, w_v_t) + adv - adv.mean(1, keepdim=True)
            col = actions[:, None]
            err = q.gather(1, col).squeeze(1) - targets
            loss = F.smooth_l1_loss(err, torch.zeros_like(err)) if with_loss else None
            d_q = torch.zeros_like(q).scatter_(1, col, (err.clamp(-1.0, 1.0) / len(err))[:, None])
            d_v = d_q.sum(1, keepdim=True)                        # dueling head, backwards
            d_adv = d_q - d_q.mean(1, keepdim=True)
            head = [d_v.t() @ h, d_v.sum(0), d_adv.t() @ h, d_adv.sum(0)]
            d_h = torch.addmm(d_v @ w_v, d_adv, w_a)
            trunk: list[torch.Tensor] = []
            for (w, _, _), z, x in zip(reversed(self._layers), reversed(pre), reversed(inputs), strict=True):
                d_z = d_h * (z > 0)                               # ReLU
                trunk = [d_z.t() @ x, d_z.sum(0)] + trunk
                d_h = d_z @ w
            return loss, trunk + head


class EnsembleQ(nn.Module):
    """Several Q-networks as one: the mean of their Q-values (a seed ensemble in one checkpoint;
    bot/agent/variants.py `EnsembleAgent.to_bot`). Learns through plain autograd only (the numpy
    fast path covers the single dueling MLP)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)
