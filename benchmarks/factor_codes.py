"""Which latent encodes which factor, and how precisely: a diagnosis of a dSprites model's codes beyond its MIG.

    python benchmarks/factor_codes.py betavae.dsprites
    python benchmarks/factor_codes.py benchmarks/runs/factorvae35.dsprites/checkpoint   # a run's checkpoint

On ``--n`` images of the model's dataset (seed 0): per latent, the KL of its posterior to the prior (nats; ~0 for an
unused latent), its mutual information with each factor normalised by the factor's entropy (disentanglement_lib's
histogram estimate, 20 bins: MIG's ingredients), and the R² of its posterior mean by each factor (the share of its
variance the factor's value explains). For a latent that carries one factor alone R² is near 1; when it is ~0.8 the
factor is encoded, but imprecisely, which caps the mutual information — for a Gaussian channel near
½·ln(1/(1 − R²)) nats, against ln(32) = 3.5 for posX. The per-value means of each factor's best latent show whether
the code is monotone or folds back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def load(name: str):
    """A model name, or a `zoo train` checkpoint folder: (model, dataset name, label)."""
    import zoo

    if (Path(name) / "state.json").is_file():
        from mig_curve import load_checkpoint

        model, state = load_checkpoint(Path(name))
        return model, state["config"]["data"], f"{name} (step {state['step']:,})"
    model = zoo.create_model(name)
    return model.eval(), model.image_spec.dataset, name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a model name or a `zoo train` checkpoint folder")
    p.add_argument("--n", type=int, default=5000)
    args = p.parse_args()
    from zoo import batching
    from zoo.data import get_dataset
    from zoo.errors import ZooError
    from zoo.metrics.mig import factor_entropy, histogram_discretize, mutual_info_matrix

    try:
        model, data, label = load(args.model)
    except ZooError as exc:
        raise SystemExit(f"error: {exc}") from None
    dataset = get_dataset(data)
    factors = dataset.sample_factors(args.n, np.random.RandomState(0))
    images = dataset.images_from_factors(factors)
    mean, logvar = batching.encode(model, images, dist=True).flatten(2).double()
    kl = (0.5 * (mean.square() + logvar.exp() - 1 - logvar)).mean(0).numpy()
    mu = mean.numpy()
    mi = mutual_info_matrix(histogram_discretize(mu), factors) / factor_entropy(factors)[None, :]
    names = list(dataset.factor_names)

    def value_means(j: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Latent j's mean per value of factor k, and each image's value index."""
        _, inverse = np.unique(factors[:, k], return_inverse=True)
        return np.bincount(inverse, mu[:, j]) / np.bincount(inverse), inverse

    def r2(j: int, k: int) -> float:
        means, inverse = value_means(j, k)
        return 1 - ((mu[:, j] - means[inverse]) ** 2).mean() / mu[:, j].var()

    print(f"{label}: {args.n:,} images of {data} (seed 0); per factor: MI/H and R² of each latent")
    width = max(11, *(len(n) for n in names))
    print(f"{'latent':>6} {'KL':>6}  " + "  ".join(f"{n:>{width}}" for n in names))
    for j in np.argsort(-kl):
        cells = (f"{mi[j, k]:.2f} {r2(j, k):.2f}" for k in range(len(names)))
        print(f"{j:>6} {kl[j]:>6.2f}  " + "  ".join(f"{c:>{width}}" for c in cells))
    for k, n in enumerate(names):
        j = int(np.argmax(mi[:, k]))
        means, _ = value_means(j, k)
        print(f"{n}: best latent {j}, its mean per value: " + " ".join(f"{m:.2f}" for m in means))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
