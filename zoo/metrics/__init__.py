"""Generic metrics that run on any registered model: disentanglement (MIG), PPL and Jacobian geometry."""

import warnings

# Forward-mode AD (jacfwd/jvp, used by the Jacobian and JVP path lengths) makes torch load its own decompositions
# through torch.jit.script, which warns about torch's deprecation on every run: torch's noise, not the user's.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
