"""The VAE family: γ-balanced VAE, β-VAE and FactorVAE, one entry point each (torch-free registration)."""

from __future__ import annotations

from pathlib import Path

import zoo

WEIGHTS = Path(__file__).parent / "weights"


def _weights(arch: str, tag: str, dataset: str) -> zoo.WeightsCfg:
    """A tag whose embedded folder is declared only once it has been trained and shipped."""
    folder = f"{arch}.{tag}"
    shipped = (WEIGHTS / folder / "config.json").is_file()
    return zoo.WeightsCfg(tag=tag, embedded=f"zoo_vae:weights/{folder}" if shipped else None, dataset=dataset)


class _Arch:
    """One entry point per architecture. (Objects are named ``*_plugin`` so the submodules of the same name,
    e.g. ``zoo_vae.vae``, never shadow them once imported.)"""

    def __init__(self, spec_fn):
        self.spec_fn = spec_fn

    @zoo.hookimpl
    def zoo_register_models(self, register):
        register(self.spec_fn())


vae_plugin = _Arch(lambda: zoo.ModelSpec(
    arch="vae", factory="zoo_vae.vae:GammaVAE",
    # faces64 first: `vae` is the face model the seed papers' γ-VAE is about (and the one relocation pairs with)
    weights=(_weights("vae", "faces64", "faces64"), _weights("vae", "dsprites", "dsprites")),
    description="VAE with γ-balancing of reconstruction and KL (disentanglement_lib conv nets)",
    paper="Asperti & Trentin 2020, Balancing reconstruction error and Kullback-Leibler divergence in VAEs"))

betavae_plugin = _Arch(lambda: zoo.ModelSpec(
    arch="betavae", factory="zoo_vae.betavae:BetaVAE",
    weights=(_weights("betavae", "dsprites", "dsprites"),),
    description="β-VAE (Bernoulli decoder, KL weighted by β; presets b1 … b16 as in disentanglement_lib)",
    paper="Higgins et al. 2017, β-VAE: Learning basic visual concepts with a constrained variational framework"))

factorvae_plugin = _Arch(lambda: zoo.ModelSpec(
    arch="factorvae", factory="zoo_vae.factorvae:FactorVAE",
    weights=(_weights("factorvae", "dsprites", "dsprites"),),
    description="FactorVAE (total-correlation penalty estimated by a discriminator on permuted codes)",
    paper="Kim & Mnih 2018, Disentangling by Factorising"))
