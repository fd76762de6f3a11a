"""A relocation map any plugin can add: ``fit(X, Y, *, seed) -> zoo.relocate.maps.LatentMap``."""

import torch

from zoo.relocate.maps import LatentMap


def fit_rank2(X, Y, *, seed=0):
    """Least squares of centred Y on the projection of centred X onto its top-2 principal directions."""
    m = LatentMap(X.shape[1], Y.shape[1])
    m.x_mean.copy_(X.mean(0))
    m.y_mean.copy_(Y.mean(0))
    Xc, Yc = X - m.x_mean, Y - m.y_mean
    _, _, Vh = torch.linalg.svd(Xc, full_matrices=False)
    P = Vh[:2].T  # d_in × 2
    coef = torch.linalg.lstsq(Xc @ P, Yc).solution  # 2 × d_out
    m.A.copy_(P @ coef)
    return m
