"""Codebook (palette) weights learned by differentiable k-means (DKM, Cho et al., ICLR 2022).

Layout (quantization.md §3.4, "shared int8 palette x per-channel scale"): each output channel's
weights are normalized by their largest magnitude m_o, the normalized values of a group of
output channels (default: the whole layer) are clustered into K = 2^B centroids c_k in [-1, 1],
and the exported int8 codes are palette values P_k = round(127 c_k): at most K distinct codes
per group, with the per-channel scale s_o = m_o / 127. Requantization is that of an int8 layer.

Training (coremltools FakePalettize, quantization.md §3.1), per group and step:

    D = (u - C)^2              squared distance of every normalized weight u to every centroid
    A = softmax(-D / tau)      soft assignment (attention over the centroids, temperature tau)
    C = A^T u / sum A          attention-weighted centroid update, a few iterations
    W = m * (A @ C_q)          the layer computes with the soft palettized weights

C starts from the last step's centroids (detached), so the gradient reaches W through the
assignment and the centroid update; C_q is C on the int8 palette grid (straight-through). In
eval mode and in the export the assignment is hard (the nearest centroid).
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import fx, nn

from .prepare import Int8Weight, WeightQuantizer, channel_shape, prepare, round_half_away, straight_through

CODEBOOK_BITS = range(1, 8)
PALETTE_LEVELS = 127  # normalized centroid 1.0 = int8 code 127


def kmeans_1d(values: torch.Tensor, k: int, iterations: int = 50) -> torch.Tensor:
    """k centroids (ascending) of 1-D `values` by Lloyd's algorithm from quantile starting
    points (deterministic). Fewer distinct values than k: the distinct values, padded by
    repeating the last one."""
    v = values.detach().reshape(-1).double()
    distinct = torch.unique(v)
    if distinct.numel() <= k:
        return torch.cat([distinct, distinct[-1:].repeat(k - distinct.numel())]).float()
    centroids = torch.quantile(v, (torch.arange(k, dtype=torch.float64) + 0.5) / k)
    for _ in range(iterations):
        idx = (v[:, None] - centroids[None]).abs().argmin(dim=1)
        sums = torch.zeros(k, dtype=torch.float64).index_add_(0, idx, v)
        counts = torch.bincount(idx, minlength=k).double()
        updated = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
        if torch.equal(updated, centroids):
            break
        centroids = updated
    return torch.sort(centroids).values.float()


def palette_grid(centroids: torch.Tensor) -> torch.Tensor:
    """Normalized centroids moved onto the int8 palette grid (multiples of 1/127 in [-1, 1])."""
    return round_half_away(centroids.clamp(-1, 1) * PALETTE_LEVELS) / PALETTE_LEVELS


class CodebookWeight(WeightQuantizer):
    """DKM palettization of one layer: `bits` per weight index, one palette per `group_size`
    output channels (None: one palette for the layer), temperature `tau`, `iterations` of the
    soft centroid update per step."""

    scheme = "codebook"

    def __init__(self, bits: int, group_size: int | None = None, tau: float = 2e-4, iterations: int = 3):
        super().__init__()
        if bits not in CODEBOOK_BITS:
            raise ValueError(f"codebook bits {bits}: 1 to 7 (8 bits is int8)")
        self.bits, self.group_size, self.tau, self.iterations = bits, group_size, tau, iterations
        self.register_buffer("centroids", torch.empty(0))

    @property
    def k(self) -> int:
        return 2 ** self.bits

    def extra_repr(self) -> str:
        return f"bits={self.bits}, group_size={self.group_size}, tau={self.tau}"

    def groups(self, channels: int) -> list[slice]:
        size = self.group_size or channels
        return [slice(start, min(start + size, channels)) for start in range(0, channels, size)]

    @staticmethod
    def normalized(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(w / m per output channel, flattened per channel; m = max|w_o|, 1 for a zero channel)."""
        flat = w.reshape(w.shape[0], -1)
        m = flat.detach().abs().amax(dim=1)
        m = torch.where(m > 0, m, torch.ones_like(m))
        return flat / m[:, None], m

    def init_centroids(self, w: torch.Tensor) -> None:
        u, _ = self.normalized(w.detach())
        self.centroids = torch.stack([kmeans_1d(u[g], self.k) for g in self.groups(w.shape[0])])

    def _grouped(self, u: torch.Tensor) -> list[tuple[slice, torch.Tensor, torch.Tensor]]:
        """(rows, normalized weights of the groups (G, values), their centroids (G, K)) for the
        runs of equally sized groups: one batched computation per run instead of a Python loop
        over the groups (per-channel palettes have as many groups as output channels)."""
        groups = self.groups(u.shape[0])
        size = groups[0].stop - groups[0].start
        full = len(groups) if groups[-1].stop - groups[-1].start == size else len(groups) - 1
        runs = [(slice(0, full * size), u[:full * size].reshape(full, -1), self.centroids[:full])]
        if full < len(groups):
            last = groups[-1]
            runs.append((last, u[last].reshape(1, -1), self.centroids[full:]))
        return runs

    def codes_and_scale(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.centroids.numel() == 0:
            self.init_centroids(w)
        u, m = self.normalized(w.detach())
        codes = torch.empty_like(u)
        for rows, x, centroids in self._grouped(u):
            palette = palette_grid(centroids)  # (G, K)
            idx = (x.unsqueeze(-1) - palette.unsqueeze(1)).abs().argmin(dim=-1)  # (G, values)
            codes[rows] = (torch.gather(palette, 1, idx) * PALETTE_LEVELS).reshape(u[rows].shape)
        return codes.reshape(w.shape), (m / PALETTE_LEVELS).float()

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(w)
        if self.centroids.numel() == 0:
            self.init_centroids(w)
        u, m = self.normalized(w)
        soft, updated = [], []
        for rows, x, centroids in self._grouped(u):
            x = x.unsqueeze(-1)  # (G, values, 1)
            c = centroids.detach()  # (G, K)
            for _ in range(self.iterations):
                attention = torch.softmax(-(x - c.unsqueeze(1)) ** 2 / self.tau, dim=-1)  # (G, values, K)
                c = (attention * x).sum(dim=1) / attention.sum(dim=1).clamp_min(1e-12)
            updated.append(c.detach())
            on_grid = straight_through(c, palette_grid(c.detach()))
            soft.append((attention @ on_grid.unsqueeze(-1)).reshape(u[rows].shape))
        with torch.no_grad():
            self.centroids = torch.cat(updated)
        return (torch.cat(soft) * m[:, None]).reshape(w.shape)


def prepare_codebook(model: nn.Module, example: torch.Tensor, bits: int, group_size: int | None = None,
                     tau: float = 2e-4, layer_bits: Mapping[str, int | None] | None = None,
                     momentum: float = 0.9) -> fx.GraphModule:
    """A fake-quantized copy of `model` with palettized weights: every Conv2d and Linear gets a
    CodebookWeight of `bits` (layer_bits: per-layer override by module name, None = int8),
    activations int8. The centroids start from 1-D k-means of each group's weights, so the model
    as returned (eval mode) is the post-training codebook quantization."""
    overrides = dict(layer_bits or {})

    def quantizer_for(name: str, layer: nn.Module) -> WeightQuantizer:
        b = overrides.get(name, bits)
        if b is None:
            return Int8Weight()
        q = CodebookWeight(b, group_size, tau)
        q.init_centroids(layer.weight)
        return q

    return prepare(model, example, quantizer_for, momentum)


__all__ = ["CodebookWeight", "channel_shape", "kmeans_1d", "palette_grid", "prepare_codebook"]
