"""Registers zoo's own datasets through the same hook a third-party plugin uses."""

from __future__ import annotations

import zoo


@zoo.hookimpl
def zoo_register_datasets(register):
    register(zoo.DatasetSpec("dsprites", "zoo.data.dsprites:ProceduralDSprites",
                             "dSprites (Matthey et al. 2017), 737,280 binary 64x64 sprites rendered on the fly"))
    register(zoo.DatasetSpec("faces64", "zoo.data.faces:ProceduralFaces",
                             "procedural colour 64x64 faces, 10 factors (skin, face width, eyes, mouth, hair, ...)"))
    register(zoo.DatasetSpec("dsprites_npz", "zoo.data.files:DSpritesNpz",
                             "DeepMind's dsprites_ndarray_*.npz from disk (path=...)", procedural=False))
    register(zoo.DatasetSpec("mpi3d_npz", "zoo.data.files:MPI3DNpz",
                             "MPI3D .npz from disk, 64x64x3, factors [6,6,2,3,3,40,40] (path=...)", procedural=False))
    register(zoo.DatasetSpec("celeba", "zoo.data.files:CelebAFolder",
                             "aligned CelebA images from a folder: 128x128 crop at (45, 25), 64x64 (path=...)",
                             procedural=False))
    register(zoo.DatasetSpec("celebahq", "zoo.data.files:CelebAHQFolder",
                             "CelebA-HQ images from a folder: 880x880 crop at (20, 60), 64x64 (path=...)",
                             procedural=False))
    register(zoo.DatasetSpec("folder", "zoo.data.generic:image_folder",
                             "any image folder, recursive: folder:PATH (size, crop, channels, factors=CSV|attr file)",
                             procedural=False))
    register(zoo.DatasetSpec("npz", "zoo.data.generic:image_array",
                             "images in an .npz (images/imgs/x, optional factors): npz:PATH", procedural=False))
    register(zoo.DatasetSpec("npy", "zoo.data.generic:image_array",
                             "images in an .npy (N,H,W[,C] or N,C,H,W; uint8 or float): npy:PATH", procedural=False))
