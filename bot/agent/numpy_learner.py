"""The DQN learner's gradient step in numpy, on the torch networks' own memory.

Split out of `bot/agent/self_learning.py`, which keeps the algorithm (network, buffer, targets, loss,
update) readable top to bottom; this module is only the fast arithmetic of one step, tested
equal to autograd + `clip_grad_norm_` + `torch.optim.Adam` (self_test/agent/test_self_learning.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bot.agent.network import QNetwork

__all__ = ["NumpyLearner"]



class NumpyLearner:
    """The Huber gradient step computed in numpy on views of the torch parameters (shared
    memory), then torch's own fused Adam kernel on them.

    Deviation (speed, same arithmetic): at this size a step is dozens of tiny matrix products,
    and on this CPU (AMD EPYC) torch's MKL / oneDNN products cost ~2x OpenBLAS's through numpy,
    each torch call carries a few microseconds of dispatch, and `Optimizer.step` ~40 us of
    Python. The forward and backward passes are those of `QNetwork.forward` / `huber_grads`
    (tests check both against autograd); Adam is `torch._fused_adam_` on the optimiser's state
    tensors, exactly what `Adam(fused=True).step()` runs, so checkpoints are unchanged.
    Products of a batch of 64 stay under OpenBLAS's threading threshold: one thread, like torch.
    The gradients live in one flat buffer, so clipping is one dot product and one multiply.
    """

    def __init__(self, q: QNetwork, q_target: QNetwork, optimizer: torch.optim.Adam) -> None:
        self.q, self.q_target, self.optimizer = q, q_target, optimizer
        self.online, self.target = self._views(q), self._views(q_target)
        self.n_actions = q.advantage.out_features
        a = self.n_actions
        # dueling head backwards: d[v, adv] = g * [1, onehot(action) - 1/A] per row
        self.head_back = np.hstack([np.ones((a, 1)), np.eye(a) - 1.0 / a]).astype(np.float32)
        # one flat gradient buffer; per-parameter views in `parameters()` order for Adam, and
        # the value and advantage heads side by side so the dueling head is one product
        params = list(q.parameters())
        shapes = {id(p): tuple(p.shape) for p in params}
        order = [x for m in q.trunk if isinstance(m, nn.Linear) for x in (m.weight, m.bias)]
        order += [q.value.weight, q.advantage.weight, q.value.bias, q.advantage.bias]
        self.flat = np.zeros(sum(p.numel() for p in params), np.float32)
        views, off = {}, 0
        for p in order:
            views[id(p)] = self.flat[off:off + p.numel()].reshape(shapes[id(p)])
            off += p.numel()
        self.grads = [torch.from_numpy(views[id(p)]) for p in params]
        self.g_trunk = [(views[id(m.weight)], views[id(m.bias)]) for m in q.trunk if isinstance(m, nn.Linear)]
        hw = q.value.weight.numel() + q.advantage.weight.numel()
        start = sum(v.size for v in (x for pair in self.g_trunk for x in pair))
        self.g_head_w = self.flat[start:start + hw].reshape(1 + a, -1)
        self.g_head_b = self.flat[start + hw:start + hw + 1 + a]
        self.params = params
        self.adam: tuple | None = None

    @staticmethod
    def _views(net: QNetwork) -> dict[str, Any]:
        n = lambda t: t.detach().numpy()  # noqa: E731  (shares memory with the tensor)
        return {"mean": n(net.mean), "std": n(net.std),
                "trunk": [(n(m.weight), n(m.bias)) for m in net.trunk if isinstance(m, nn.Linear)],
                "value": (n(net.value.weight), n(net.value.bias)),
                "advantage": (n(net.advantage.weight), n(net.advantage.bias))}

    @staticmethod
    def normalise(view: dict[str, Any], states: np.ndarray) -> np.ndarray:
        x = states - view["mean"]
        x /= view["std"]
        np.maximum(x, -10.0, out=x)
        return np.minimum(x, 10.0, out=x)

    def huber_grads(self, x: np.ndarray, actions: np.ndarray, targets: np.ndarray, *,
                    with_loss: bool) -> float | None:
        """`QNetwork.huber_grads` on normalised inputs `x`; the gradient lands in `self.flat`."""
        online = self.online
        inputs, pre = [x], []
        for w, b in online["trunk"]:
            z = inputs[-1] @ w.T
            z += b
            pre.append(z)
            inputs.append(np.maximum(z, 0.0))
        h = inputs.pop()
        (wv, bv), (wa, ba) = online["value"], online["advantage"]
        w_head = np.concatenate([wv, wa])
        out = h @ w_head.T                                      # [v, adv] per row
        out += np.concatenate([bv, ba])
        adv_mean = np.add.reduce(out[:, 1:], axis=1)
        adv_mean /= np.float32(self.n_actions)
        q_a = out[:, 0] + out.take(self._rows(len(x)) + actions) - adv_mean
        err = q_a - targets
        loss = None
        if with_loss:
            e = np.abs(err)
            loss = float(np.where(e < 1.0, 0.5 * err * err, e - 0.5).mean())
        g = np.maximum(err, -1.0)                                # the Huber gradient: clipped error
        np.minimum(g, 1.0, out=g)
        g /= np.float32(len(err))
        d_out = self.head_back.take(actions, axis=0)
        d_out *= g[:, None]
        np.matmul(d_out.T, h, out=self.g_head_w)
        d_out.sum(axis=0, out=self.g_head_b)
        d_h = d_out @ w_head
        for k in range(len(pre) - 1, -1, -1):
            d_h *= pre[k] > 0                                    # ReLU
            gw, gb = self.g_trunk[k]
            np.matmul(d_h.T, inputs[k], out=gw)
            d_h.sum(axis=0, out=gb)
            if k:
                d_h = d_h @ online["trunk"][k][0]
        return loss

    def _rows(self, n: int) -> np.ndarray:
        if getattr(self, "_row_base", np.empty(0)).shape[0] != n:
            self._row_base = np.arange(n) * (1 + self.n_actions) + 1   # flat index of adv[row, 0]
        return self._row_base

    def clip_and_step(self, max_norm: float) -> None:
        """Clip the gradient's global norm, then one fused Adam step (the optimiser's state)."""
        f = self.flat
        norm = float(np.sqrt(np.dot(f, f)))
        scale = max_norm / (norm + 1e-6)
        if scale < 1.0:
            f *= np.float32(scale)
        if self.adam is None:
            # the first step goes through the optimiser, which creates its state
            for p, g in zip(self.params, self.grads, strict=True):
                p.grad = g
            self.optimizer.step()
            for p in self.params:
                p.grad = None
            group = self.optimizer.param_groups[0]
            st = [self.optimizer.state[p] for p in self.params]
            # the step counters as views of one tensor: one increment instead of one per parameter
            self.steps = torch.stack([s["step"] for s in st])
            for i, s in enumerate(st):
                s["step"] = self.steps[i]
            self.adam = ([s["exp_avg"] for s in st], [s["exp_avg_sq"] for s in st], [s["step"] for s in st],
                         dict(amsgrad=False, lr=group["lr"], beta1=group["betas"][0], beta2=group["betas"][1],
                              weight_decay=group["weight_decay"], eps=group["eps"], maximize=False,
                              grad_scale=None, found_inf=None))
            return
        exp_avg, exp_avg_sq, steps, opts = self.adam
        self.steps += 1
        torch._fused_adam_(self.params, self.grads, exp_avg, exp_avg_sq, [], steps, **opts)
