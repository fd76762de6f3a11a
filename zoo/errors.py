"""Errors a user can act on. The CLI prints ``str(err)`` as one line and exits non-zero; no traceback."""

from __future__ import annotations


class ZooError(Exception):
    """Base class: the message names what is wrong and what to do."""

    exit_code = 1


class UnknownName(ZooError, KeyError):
    """A model, dataset, metric or tool name nobody registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class RegistrationError(ZooError):
    """A plugin registered something invalid or clashing with another plugin."""


class WeightsError(ZooError):
    """Weights are missing, malformed, tampered with or do not fit the model."""


class CapabilityError(ZooError):
    """A tool needs something the model cannot do (e.g. encode with a GAN that has no recoder)."""


class InputError(ZooError, ValueError):
    """An image or latent batch handed to a model breaks the protocol (dtype, shape, range, NaN/Inf)."""


class DataError(ZooError):
    """A dataset file is missing or has the wrong layout."""


class TrainingError(ZooError):
    """Training cannot go on (non-finite loss, bad resume folder, ...)."""
