"""Latent relocation between two generative models (Asperti & Tonelli 2022, "Comparing the latent space of
generative models"): a simple map carries latent codes of one model into the latent space of another.

``zoo.relocate.api.relocate`` is the tool; ``maps`` holds the map estimators, ``support`` the correspondence sets.
"""
