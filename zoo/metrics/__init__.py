"""Generic metrics that run on any registered model: disentanglement (MIG), PPL and Jacobian geometry."""
