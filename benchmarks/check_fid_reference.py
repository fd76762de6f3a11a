"""Check zoo's FID against pytorch-fid's own code (``pip install pytorch-fid==0.3.0``): the same weights in both, the
same images, features and FID compared.

The FID Inception weights cannot be downloaded here, so both networks get the same RANDOM weights in the layout of
pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``: pytorch-fid's ``InceptionV3([3])`` (``use_fid_inception=True``,
its FIDInceptionA/C/E_1/E_2 blocks) is built with its download replaced by that state dict, which it loads strictly;
zoo reads the same state dict from a ``.pth`` and a ``.safetensors`` file.

1. pool3 features with pytorch-fid's defaults (bilinear resize to 299, scaling to [−1, 1]) on faces64 images at three
   sizes: maximum absolute difference.
2. FID end to end through pytorch-fid's own ``calculate_activation_statistics`` (it reads the PNGs itself) and
   ``calculate_frechet_distance``, against zoo's features of the same PNGs and zoo's ``frechet_distance``: held-out
   faces64 images vs samples of ``vae.faces64``, 2,100 of each (more than the 2,048 dimensions). To keep this to
   minutes on a CPU both networks read the images at 80×80 without resizing (``resize_input=False``); step 1 covers
   the resize. Twice: (a) with the batch-norm statistics of the random weights calibrated on 200 of the images, so
   every feature varies and the covariances have full rank, as with the real weights on real images; (b) with the
   raw random weights, under which many features are constant: singular covariances, where scipy's ``sqrtm`` warns
   that its result "might be inaccurate" and zoo's eigenvalues need no ε.
3. The Fréchet distance alone on 2(a)'s 2048-d statistics: value and time, zoo (eigenvalues of Σ₁^½Σ₂Σ₁^½) vs
   pytorch-fid (``scipy.linalg.sqrtm`` of Σ₁Σ₂).

    python benchmarks/check_fid_reference.py     # ~10 min on one CPU thread; writes benchmarks/results/fid_reference.txt
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

import zoo
from zoo.data import get_dataset
from zoo.metrics.fid import feature_statistics, frechet_distance
from zoo.metrics.inception import UNUSED, FIDInceptionV3, load_fid_inception, random_state_dict

OUT = Path(__file__).resolve().parent / "results" / "fid_reference.txt"
N = 2100
SIZE = 80


def pytorch_fid_inception(state: dict, resize: bool):
    """pytorch-fid's own FID Inception, its weights download replaced by ``state`` (loaded strictly by its code)."""
    from pytorch_fid import inception

    saved = inception.load_state_dict_from_url
    inception.load_state_dict_from_url = lambda *args, **kwargs: state
    try:
        return inception.InceptionV3([3], resize_input=resize).eval()
    finally:
        inception.load_state_dict_from_url = saved


def write_pngs(images: torch.Tensor, folder: Path) -> list[str]:
    folder.mkdir()
    paths = []
    for i, img in enumerate((images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
        paths.append(str(folder / f"{i:05d}.png"))
        Image.fromarray(img).save(paths[-1])
    return paths


def read_pngs(paths: list[str]) -> torch.Tensor:
    """The PNGs as pytorch-fid's loader sees them: RGB, ToTensor (uint8 / 255)."""
    return torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in paths]
                       ).float() / 255


def calibrated(state: dict, images: torch.Tensor) -> dict:
    """``state`` with every batch norm's running statistics set to those of ``images`` flowing through the network
    (one forward pass in training mode, cumulative averages), so that no feature is constant."""
    net = FIDInceptionV3()
    net.load_state_dict({k: v for k, v in state.items() if not UNUSED.search(k)})
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()(images, resize=False)
    return {**state, **net.state_dict()}


def end_to_end(state: dict, paths: list[list[str]], images: list[torch.Tensor], tmp: Path, label: str,
               say: Callable[[str], None]) -> list[tuple[np.ndarray, np.ndarray]]:
    """FID of the two PNG sets by pytorch-fid's pipeline and by zoo's, with the weights ``state``; zoo's
    statistics."""
    from pytorch_fid import fid_score

    torch.save(state, tmp / "weights.pth")
    ours, theirs = load_fid_inception(tmp / "weights.pth"), pytorch_fid_inception(state, resize=False)
    start = time.time()
    stats_theirs = [fid_score.calculate_activation_statistics(p, theirs, batch_size=50, dims=2048, num_workers=0)
                    for p in paths]
    seconds_theirs, start = time.time() - start, time.time()
    features = [torch.cat([ours(x, resize=False) for x in batch.split(50)]) for batch in images]
    seconds_ours = time.time() - start
    stats = [feature_statistics(f) for f in features]
    fid_theirs = fid_score.calculate_frechet_distance(*stats_theirs[0], *stats_theirs[1])
    result = frechet_distance(*stats[0], *stats[1])
    constant = int(sum((f.std(0) == 0).sum() for f in features))
    say(f"   {label}: {constant} constant features (of 2 x 2048); "
        f"max |mu_zoo - mu_pytorch-fid| = {max(np.abs(a[0] - b[0]).max() for a, b in zip(stats, stats_theirs)):.2e}, "
        f"max |sigma_zoo - sigma_pytorch-fid| = "
        f"{max(np.abs(a[1] - b[1]).max() for a, b in zip(stats, stats_theirs)):.2e}")
    say(f"      FID pytorch-fid {fid_theirs:.8g}, zoo {result['fid']:.8g} (eps offset {result['eps_offset']:g}); "
        f"relative difference {abs(result['fid'] - fid_theirs) / fid_theirs:.1e}")
    say(f"      features of {sum(len(p) for p in paths):,} images: pytorch-fid {seconds_theirs:.0f} s, "
        f"zoo {seconds_ours:.0f} s")
    return stats


@torch.no_grad()
def main() -> None:
    from pytorch_fid import fid_score

    torch.set_num_threads(1)
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    state = random_state_dict(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.save(state, tmp / "random_inception.pth")
        save_file({k: v.contiguous() for k, v in state.items()}, tmp / "random_inception.safetensors")
        ours = {fmt: load_fid_inception(tmp / f"random_inception.{fmt}") for fmt in ("pth", "safetensors")}
        theirs = pytorch_fid_inception(state, resize=True)
        say("zoo's FID Inception vs pytorch-fid 0.3.0 (InceptionV3([3]), use_fid_inception=True), the same random "
            "weights (zoo.metrics.inception.random_state_dict(seed=0))")

        say("1. pool3 features, pytorch-fid's defaults (resize to 299, [-1, 1]); 8 faces64 images per size:")
        faces, _ = get_dataset("faces64").sample(8, 3)
        for size in (32, 64, 128):
            x = F.interpolate(faces, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
            reference = theirs(x)[0].flatten(1)
            for fmt, net in ours.items():
                diff = (net.embed(x) - reference).abs().max().item()
                say(f"   {size}x{size} from .{fmt}: max |zoo - pytorch-fid| = {diff:.2e} "
                    f"(features up to {reference.abs().max().item():.3g})")

        model = zoo.create_model("vae.faces64")
        data, _ = get_dataset("faces64").sample(N, 10_000)
        samples = torch.cat([model.decode(z) for z in model.sample_latent(
            N, generator=torch.Generator().manual_seed(0)).split(100)])
        paths = [write_pngs(F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1),
                            tmp / name) for name, x in (("data", data), ("samples", samples))]
        images = [read_pngs(p) for p in paths]
        say(f"2. FID end to end, {N:,} held-out faces64 images vs {N:,} samples of vae.faces64, written as "
            f"{SIZE}x{SIZE} PNGs, read at that size (resize_input=False) by both:")
        full_rank = end_to_end(calibrated(state, torch.cat([images[0][:100], images[1][:100]])), paths, images, tmp,
                               "(a) batch norm calibrated on 200 of the images", say)
        end_to_end(state, paths, images, tmp, "(b) raw random weights", say)

        start = time.time()
        value_theirs = fid_score.calculate_frechet_distance(*full_rank[0], *full_rank[1])
        seconds_theirs, start = time.time() - start, time.time()
        value_ours = frechet_distance(*full_rank[0], *full_rank[1])["fid"]
        seconds_ours = time.time() - start
        say(f"3. Fréchet distance of 2(a)'s 2048-d statistics: pytorch-fid {value_theirs:.8g} in "
            f"{seconds_theirs:.1f} s (scipy sqrtm), zoo {value_ours:.8g} in {seconds_ours:.1f} s "
            f"({seconds_theirs / seconds_ours:.1f}x faster)")
    say(f"torch {torch.__version__}, one thread")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"written to {OUT}")


if __name__ == "__main__":
    main()
