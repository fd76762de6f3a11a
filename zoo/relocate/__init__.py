"""Latent relocation between two generative models (Asperti & Tonelli 2022, "Comparing the latent space of
generative models"): a simple map carries latent codes of one model into the latent space of another."""

from zoo.relocate.maps import MAPS, fit_map, load_map, save_map
from zoo.relocate.support import FIT_SETS, reconstruction_gain, select

__all__ = ["MAPS", "FIT_SETS", "fit_map", "load_map", "save_map", "reconstruction_gain", "select"]
