"""Registers ``relocate`` as a pairwise tool through the same hook a third-party plugin uses."""

import zoo


@zoo.hookimpl
def zoo_register_tools(register):
    register(zoo.ToolSpec("relocate", "zoo.relocate.api:relocate",
                          "fit a map between two latent spaces and report L/R/M-MSE (Asperti & Tonelli 2022)",
                          needs=("encode", "decode")))
