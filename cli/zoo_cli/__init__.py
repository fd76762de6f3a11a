"""The ``zoo`` command line: thin click wrappers over the ``zoo`` library."""
