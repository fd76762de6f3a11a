"""The Inception-v3 of FID: pool3 features (2048-d) exactly as pytorch-fid computes them, as zoo's own module.

Heusel et al. (2017) computed FID with TensorFlow's 2015-12-05 Inception graph; pytorch-fid ported its weights
(``pt_inception-2015-12-05-6726825d.pth``) into torchvision's Inception-v3 layout with three differences, all kept
here: the average pools inside the A, C and first E blocks ignore their zero padding (TensorFlow's ``count_include_pad
=False``), the last E block pools with a max instead of an average, and the classifier has 1008 classes (unused:
FID reads the 2048-d global average pool before it). Input in [0, 1] is resized to 299×299 (bilinear,
``align_corners=False``) and then scaled to [−1, 1], in that order, as pytorch-fid does; grey images are repeated to
three channels.

zoo never downloads these weights: pass the file (pytorch-fid's release asset ``FID_WEIGHTS_URL``, or a
``.safetensors`` with the same tensor names). ``.pth`` files are read by torch's weights-only unpickler, so no code
from the file runs. The module is verified against pytorch-fid's own code by ``benchmarks/check_fid_reference.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.errors import WeightsError

FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
# pytorch-fid's file (95,628,359 bytes; torch-fidelity ships the same bytes under the second name)
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_WEIGHTS_NAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
INPUT_SIZE = 299
POOL3_DIM = 2048
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, kept by the port
UNUSED = re.compile(r"^fc\.|^AuxLogits\.")  # the classifiers: in the file, not needed for pool3


class ConvBN(nn.Module):
    """Convolution without bias, batch norm, ReLU (torchvision's ``BasicConv2d``: same tensor names)."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_tf(x: Tensor) -> Tensor:
    """3×3 average pool, stride 1, that averages over the valid pixels only (TensorFlow's padding behaviour)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """35×35 block: 1×1, 5×5, double 3×3 and pooled branches."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_tf(x)),
        ], 1)


class ReductionB(nn.Module):
    """35×35 → 17×17 (``Mixed_6a``)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class MixedC(nn.Module):
    """17×17 block with 7×7 convolutions factored into 1×7 and 7×1."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        row, col = {"kernel": (1, 7), "padding": (0, 3)}, {"kernel": (7, 1), "padding": (3, 0)}
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, **row)
        self.branch7x7_3 = ConvBN(c7, 192, **col)
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_3 = ConvBN(c7, c7, **row)
        self.branch7x7dbl_4 = ConvBN(c7, c7, **col)
        self.branch7x7dbl_5 = ConvBN(c7, 192, **row)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        dbl = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            dbl = conv(dbl)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            dbl,
            self.branch_pool(_avg_pool_tf(x)),
        ], 1)


class ReductionD(nn.Module):
    """17×17 → 8×8 (``Mixed_7a``)."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b = x
        for conv in (self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = conv(b)
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, stride=2)], 1)


class MixedE(nn.Module):
    """8×8 block with split 1×3 / 3×1 outputs. ``max_pool``: the FID graph's last block pools with a max (likely a
    bug in that graph, but it is what every published FID used)."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pooled),
        ], 1)


class FIDInceptionV3(nn.Module):
    """Images in [0, 1] (N, 1 or 3, H, W) → pool3 features (N, 2048). Tensor names are those of pytorch-fid's
    weights file (torchvision's Inception-v3 names), so its state dict loads as is (``fc`` is not needed)."""

    name = "inception"
    dim = POOL3_DIM

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = MixedA(192, 32)
        self.Mixed_5c = MixedA(256, 64)
        self.Mixed_5d = MixedA(288, 64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = MixedC(768, 128)
        self.Mixed_6c = MixedC(768, 160)
        self.Mixed_6d = MixedC(768, 160)
        self.Mixed_6e = MixedC(768, 192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = MixedE(1280, max_pool=False)
        self.Mixed_7c = MixedE(2048, max_pool=True)

    def forward(self, x: Tensor, resize: bool = True) -> Tensor:
        """``resize=False`` feeds the images at their own size (pytorch-fid's ``resize_input=False``)."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if resize:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean((2, 3))  # global average pool: pool3

    def embed(self, x: Tensor) -> Tensor:
        return self(x)


def load_fid_inception(path: str | Path) -> FIDInceptionV3:
    """The FID Inception with the weights of ``path`` (pytorch-fid's ``.pth`` or a ``.safetensors`` with the same
    names), in eval mode; a file that does not fit is one line naming the first tensor that is wrong.

    ``net.files`` maps the file to its sha256; ``net.published`` says whether it is pytorch-fid's file byte for byte
    (the only weights whose FIDs compare with papers). A file under pytorch-fid's name with other bytes is refused."""
    from zoo.hub import load_into, sha256_file
    from zoo.metrics.distances import read_tensors

    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"{path} does not exist; the FID Inception weights are pytorch-fid's "
                           f"pt_inception-2015-12-05-6726825d.pth ({FID_WEIGHTS_URL}) — zoo never downloads")
    digest = sha256_file(path)
    if path.name in FID_WEIGHTS_NAMES and digest != FID_WEIGHTS_SHA256:
        raise WeightsError(f"{path} is not pytorch-fid's file (sha256 {digest[:12]}…, expected "
                           f"{FID_WEIGHTS_SHA256[:12]}…): truncated or replaced; download it again from "
                           f"{FID_WEIGHTS_URL}")
    net = FIDInceptionV3()
    state = {k: v for k, v in read_tensors(path).items() if not UNUSED.search(k)}
    # batch norm's training-step counters: some exports drop them, and evaluation never reads them
    state.update({k: v for k, v in net.state_dict().items() if k.endswith(".num_batches_tracked") and k not in state})
    load_into(net, {"": state}, str(path))
    net.files, net.published = {str(path): digest}, digest == FID_WEIGHTS_SHA256
    return net.requires_grad_(False).eval()


@torch.no_grad()
def random_state_dict(seed: int) -> dict[str, Tensor]:
    """Random weights in the layout of pytorch-fid's file (``fc`` included), for tests and the parity check: He-scaled
    convolutions and batch-norm statistics away from the identity, so activations keep their scale through the 94
    layers and every branch matters."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, t in FIDInceptionV3().state_dict().items():
        if name.endswith("conv.weight"):
            fan_in = t[0].numel()
            state[name] = torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5
        elif name.endswith(("bn.weight", "bn.running_var")):
            state[name] = 0.5 + torch.rand(t.shape, generator=g)
        elif name.endswith(("bn.bias", "bn.running_mean")):
            state[name] = 0.1 * torch.randn(t.shape, generator=g)
        else:  # num_batches_tracked
            state[name] = t
    state["fc.weight"] = 0.01 * torch.randn(1008, POOL3_DIM, generator=g)
    state["fc.bias"] = torch.zeros(1008)
    return state
