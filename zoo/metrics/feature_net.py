"""Feature spaces zoo trains itself: a small CNN that predicts a ground-truth dataset's factors, whose 128-d embedding
serves FID on that dataset when no Inception weights are at hand (nothing can be downloaded here, and ImageNet
features say little about procedural sprites and faces anyway).

The network sees the dataset's images at their own size, scaled to [−1, 1]: four 3×3 stride-2 convolutions with ReLU
(64 → 4 pixels), a linear embedding of the flattened map (the feature space, taken before its ReLU so no unit is
dead and the covariance stays full rank), then ReLU and one linear classifier per factor. After training, each
feature is standardised to zero mean and unit variance on held-out images, so an FID is in units of the data's own
spread (a shift of one standard deviation in every feature adds 128). It is trained by
``benchmarks/train_faces64_features.py``; the weights ship in ``zoo/metrics/weights/<dataset>_features/`` with a
model card giving the command and the held-out factor accuracy. These features are zoo's: FIDs in them compare zoo
models with each other, not with published (Inception) FIDs.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.errors import WeightsError
from zoo.spec import ImageSpec

ARCHITECTURE = "factor_features"
PACKAGE = "zoo.metrics"


def shipped_folder(dataset: str) -> Path:
    """Where the feature net of ``dataset`` ships (the folder may not exist: not every dataset has one)."""
    from zoo.hub import embedded_folder

    return embedded_folder(f"{PACKAGE}:weights/{dataset}_features")


class FactorFeatureNet(nn.Module):
    """Images in [0, 1] at ``image_spec`` → ``embed`` (N, dim); ``forward`` → one logit vector per factor."""

    def __init__(self, channels: int, size: Sequence[int], factor_sizes: Sequence[int], factor_names: Sequence[str],
                 dataset: str, width: int = 32, dim: int = 128):
        super().__init__()
        self.model_args = {"channels": channels, "size": list(size), "factor_sizes": list(factor_sizes),
                           "factor_names": list(factor_names), "dataset": dataset, "width": width, "dim": dim}
        self.image_spec = ImageSpec(channels=channels, size=tuple(size), dataset=dataset)
        self.name = f"{dataset}-features"
        self.dim = dim
        widths = (channels, width, width, 2 * width, 2 * width)
        layers: list[nn.Module] = []
        for cin, cout in itertools.pairwise(widths):
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        cells = (size[0] // 16) * (size[1] // 16)
        self.embedding = nn.Linear(widths[-1] * cells, dim)
        self.heads = nn.Linear(dim, sum(factor_sizes))
        self.factor_sizes = tuple(factor_sizes)
        # set by standardise() after training; the identity until then
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))

    def raw_embedding(self, x: Tensor) -> Tensor:
        from zoo.image import adapt

        return self.embedding(self.convs(adapt(x, self.image_spec) * 2 - 1).flatten(1))

    def embed(self, x: Tensor) -> Tensor:
        """The feature space: the embedding, standardised on held-out images."""
        return (self.raw_embedding(x) - self.feature_mean) / self.feature_std

    def forward(self, x: Tensor) -> list[Tensor]:
        return list(self.heads(torch.relu(self.raw_embedding(x))).split(self.factor_sizes, 1))

    @torch.no_grad()
    def standardise(self, raw: Tensor) -> None:
        """Make ``embed`` zero-mean, unit-variance on the images whose raw embeddings are ``raw`` (N, dim)."""
        self.feature_mean.copy_(raw.mean(0))
        self.feature_std.copy_(raw.std(0).clamp_min(1e-6))


def build_for(dataset: Any, **kwargs: Any) -> FactorFeatureNet:
    """A fresh feature net for a ground-truth dataset (its image size must be divisible by 16)."""
    return FactorFeatureNet(dataset.image_spec.channels, dataset.image_spec.size, dataset.factor_sizes,
                            dataset.factor_names, dataset.name, **kwargs)


def load_feature_net(folder: str | os.PathLike[str]) -> FactorFeatureNet:
    """A feature net from its weights folder (config.json + model.safetensors, sha256-checked, loaded strictly)."""
    from zoo.hub import load_into, read_weights

    config, state_dicts = read_weights(folder)
    if config.get("architecture") != ARCHITECTURE:
        raise WeightsError(f"{folder} holds a {config.get('architecture')!r}, not a zoo {ARCHITECTURE} network")
    try:
        net = FactorFeatureNet(**config["model_args"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{folder}/config.json has unusable model_args ({exc}); the folder is damaged") from None
    load_into(net, state_dicts, str(folder))
    return net.requires_grad_(False).eval()


def save_feature_net(net: FactorFeatureNet, folder: str | os.PathLike[str], *, provenance: Mapping[str, Any],
                     card: str, overwrite: bool = False) -> Path:
    """Write ``net`` as a weights folder, atomically (see :func:`zoo._util.atomic_folder`)."""
    import json

    from safetensors.torch import save_file

    from zoo import __version__
    from zoo._util import atomic_folder
    from zoo.hub import CONFIG_NAME, FORMAT_VERSION, WEIGHTS_NAME, owned_files, sha256_file

    with atomic_folder(folder, owned_files, "feature network folder", overwrite=overwrite) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, tmp / WEIGHTS_NAME,
                  metadata={"format": "pt", "zoo_arch": ARCHITECTURE})
        config = {"zoo_format": FORMAT_VERSION, "zoo_version": __version__, "architecture": ARCHITECTURE,
                  "model_args": net.model_args, "image": net.image_spec.to_dict(),
                  "dataset": net.model_args["dataset"], "files": {"": WEIGHTS_NAME},
                  "sha256": {WEIGHTS_NAME: sha256_file(tmp / WEIGHTS_NAME)}, "provenance": dict(provenance)}
        (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        (tmp / "README.md").write_text(card)
    return Path(folder)
