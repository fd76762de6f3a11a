"""A metric any plugin can add: one function ``f(run, **options) -> dict`` (see zoo.tasks)."""


def code_spread(run, n, seed, threshold):
    images, _ = run.data.sample(n, seed)
    codes = run.encode(run.model, images).flatten(1)  # zoo's batched helper: device, batch size, no grad
    spread = codes.std(0)
    return {"spread": spread.tolist(), "active_dims": int((spread > threshold).sum()), "n": n}
