"""A throwaway plugin for the core's tests: a tiny autoencoder and a tiny ground-truth dataset (8x8 bars)."""

from __future__ import annotations

import zoo


@zoo.hookimpl
def zoo_register_models(register):
    register(zoo.ModelSpec(arch="toyae", factory="zoo_toy_model:ToyAE", aliases=("tae",),
                           weights=(zoo.WeightsCfg(tag="bars"),), default_args={"latent_dim": 3},
                           description="tiny autoencoder for tests"))


@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.DatasetSpec(name="toybars", factory="zoo_toy_model:ToyBars", description="8x8 bars"))
