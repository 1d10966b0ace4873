"""Training-time augmentation of 8x8 digit rows: small shifts and rotations, drawn from the
fit's own generator (``training.fit``)."""

from __future__ import annotations

import math

import torch
from torch import nn


def shift_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each 8x8 image by -1, 0 or +1 pixel in each direction, filling with zeros."""
    n = x.shape[0]
    images = x.view(n, 8, 8)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(8).view(1, 8)).view(n, 8, 1).expand(n, 8, 8)
    cols = (dx.view(n, 1) + torch.arange(8).view(1, 8)).view(n, 1, 8).expand(n, 8, 8)
    batch = torch.arange(n).view(n, 1, 1).expand(n, 8, 8)
    return padded[batch, rows, cols].reshape(n, 64)


def rotate_images(x: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Rotate each 8x8 image about its centre by an angle drawn uniformly in
    [-``degrees``, ``degrees``] (bilinear, zeros outside), one affine grid per image."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros(n)
    theta = torch.stack([cos, -sin, zero, sin, cos, zero], dim=1).view(n, 2, 3)
    images = x.view(n, 1, 8, 8)
    grid = nn.functional.affine_grid(theta, [n, 1, 8, 8], align_corners=False)
    out = nn.functional.grid_sample(images, grid, mode="bilinear", align_corners=False)
    return out.reshape(n, 64)
