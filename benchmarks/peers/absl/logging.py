"""No-op stand-in for absl.logging (disentanglement_lib's metric modules log progress through it)."""


def _quiet(*args, **kwargs) -> None:
    pass


debug = info = warning = warn = error = _quiet
