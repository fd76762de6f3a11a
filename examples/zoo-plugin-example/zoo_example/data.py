"""A procedural ground-truth dataset: every (angle, spacing) pair renders one image of stripes."""

import numpy as np
import torch

import zoo
from zoo.data import GroundTruthDataset


class Stripes(GroundTruthDataset):
    name = "stripes"
    factor_names = ("angle", "spacing")
    factor_sizes = (8, 6)
    factor_values = (np.linspace(0, np.pi, 8, endpoint=False), np.linspace(4, 14, 6))

    def __init__(self):
        self.image_spec = zoo.ImageSpec(1, (64, 64), dataset="stripes")

    def _render(self, factors):
        angle = torch.as_tensor(self.factor_values[0][factors[:, 0]], dtype=torch.float32)[:, None, None]
        spacing = torch.as_tensor(self.factor_values[1][factors[:, 1]], dtype=torch.float32)[:, None, None]
        v, u = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        along = u * torch.cos(angle) + v * torch.sin(angle)
        return (torch.sin(2 * torch.pi * along / spacing) > 0).float()[:, None]
