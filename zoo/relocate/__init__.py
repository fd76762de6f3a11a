"""Latent relocation between two generative models (Asperti & Tonelli 2022, "Comparing the latent space of
generative models"): a simple map carries latent codes of one model into the latent space of another.

``api`` holds the steps (``fit_relocation``, ``evaluate_relocation``, ``relocation_png``) and their composition
``relocate`` (the ``relocate`` task), ``maps`` the relocation maps, ``support`` the fit sets; ``plugin`` registers
them, and any plugin can add maps and fit sets through the same hooks.
"""
