"""The example plugin's own tests: latent-zoo's conformance kit does the work."""

from zoo.testing import EncoderDecoderConformance


class TestLinearAE(EncoderDecoderConformance):
    arch = "linae"
    tiny_args = {"latent_dim": 3, "image_size": 8}
