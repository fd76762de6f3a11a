"""`zoo convert stylegan2` on hostile pickles: each is refused in one line (a WeightsError; `error:` from the CLI)
before what it declares costs memory. The CLI runs in a subprocess whose peak RSS is compared with that of a
subprocess that only imports torch and zoo; without the checks each of these files takes gigabytes (or crashes)."""

import collections
import io
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import types
import zipfile
import zlib

import numpy as np
import pytest
import torch
from test_convert import Persistent, tiny_stylegan, write_nvlabs_pickle

import zoo
from zoo import safe_pickle

GiB = 1 << 30
NUMPY_RECONSTRUCT = np.arange(1).__reduce__()[0]  # numpy's _reconstruct, from whichever module this numpy has it
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_NO_PROGRESS": "1"}
LIMIT_CPU = "import resource; resource.setrlimit(resource.RLIMIT_CPU, (60, 60)); "  # a hang ends as a failure
CLI = LIMIT_CPU + "from zoo_cli.main import main; main()"


# --- building hostile files ---------------------------------------------------------------------------------------
class Reduce:
    """Pickles as ``value``, a ``__reduce__`` tuple (callable, args[, state])."""

    def __init__(self, *value):
        self.value = value

    def __reduce__(self):
        return self.value


def module_from(tensors):
    """A module tree holding ``tensors`` (tensors, or objects that pickle as one) as buffers under dotted names."""
    root = torch.nn.Module()
    for key, value in tensors.items():
        *parents, name = key.split(".")
        module = root
        for part in parents:
            module = module._modules.setdefault(part, torch.nn.Module())
        module._buffers[name] = value
    return root


def generator_shapes(**args):
    """Names and shapes of zoo's stylegan generator for ``args``, from a model built on the meta device."""
    with torch.device("meta"):
        model = zoo.build_model("stylegan", {"up_conv": "nvlabs", "recoder_width": 0, "discriminator": False, **args})
    return {k: v.shape for k, v in model.generator.state_dict().items()}


# a generator of 1.4 GB of float32 parameters (2048 feature maps at 4…64 pixels); the pickles below are kilobytes
BIG = {"z_dim": 8, "w_dim": 8, "map_layers": 2, "resolution": 64, "channel_base": 2048 * 64, "channel_max": 2048}


def contiguous_stride(shape):
    return tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))


def storage_record(tensor):
    """What ``torch.storage._load_from_bytes`` gets in a pickle: torch's legacy serialization of a storage."""
    return tensor._typed_storage().__reduce__()[1][0]


def rebuilt_tensor(record, size, stride=None, offset=0):
    """Pickles as NVlabs' tensors do: ``_rebuild_tensor_v2(_load_from_bytes(record), offset, size, stride, ...)``."""
    storage = Reduce(torch.storage._load_from_bytes, (record,))
    return Reduce(torch._utils._rebuild_tensor_v2, (storage, offset, size, stride or contiguous_stride(size), False,
                                                     collections.OrderedDict()))


class PidPickler(pickle.Pickler):
    """Pickles a ``("storage", ...)`` tuple as a persistent id, as torch.save does for a storage."""

    def persistent_id(self, obj):
        return obj if isinstance(obj, tuple) and obj[:1] == ("storage",) else None


def pid_pickle(pid):
    buf = io.BytesIO()
    PidPickler(buf, protocol=2).dump(pid)
    return buf.getvalue()


def legacy_record(numel, payload):
    """A legacy storage record declaring ``numel`` floats and holding ``payload``."""
    header = [torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION,
              {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}]
    return (b"".join(pickle.dumps(x, protocol=2) for x in header)
            + pid_pickle(("storage", torch.FloatStorage, "0", "cpu", numel, None)) + pickle.dumps(["0"], protocol=2)
            + struct.pack("<q", len(payload) // 4) + payload)


def zip_archive(members):
    """A zip archive of ``name: (data as stored, method, crc32, uncompressed size)``, written field by field (zipfile
    cannot store data that is already deflated)."""
    out, central = bytearray(), bytearray()
    for name, (data, method, crc, size) in members.items():
        fields = struct.pack("<HHHHHIIIHH", 20, 0, method, 0, 0, crc, len(data), size, len(name), 0)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHII", 0, 0, 0, 0, len(out))
        central += name.encode()
        out += b"PK\x03\x04" + fields + name.encode() + data
    end = struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), len(out), 0)
    return bytes(out + central + b"PK\x05\x06" + end)


def zip_record(numel, data_member):
    """A storage record in torch's zip format (the members torch.save writes) declaring ``numel`` floats, with
    ``data_member`` as its data."""
    buf = io.BytesIO()
    torch.save(torch.zeros(1)._typed_storage(), buf)
    with zipfile.ZipFile(buf) as template:
        members = {i.filename: (template.read(i), 0, i.CRC, i.file_size) for i in template.infolist()}
    pkl = pid_pickle(("storage", torch.FloatStorage, "0", "cpu", numel))
    members["archive/data.pkl"] = (pkl, 0, zlib.crc32(pkl), len(pkl))
    members["archive/data/0"] = data_member
    return zip_archive(members)


def deflated_zeros(chunks, chunk=1 << 24):
    """A deflated member inflating to ``chunks`` × 16 MiB of zeros (~1000:1): one compressed chunk, repeated
    (a full flush makes it independent of what precedes it), then an empty final block."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc, zeros = 0, bytes(chunk)
    for _ in range(chunks):
        crc = zlib.crc32(zeros, crc)
    return block * chunks + b"\x03\x00", zipfile.ZIP_DEFLATED, crc, chunks * chunk


def with_extra(path, hostile):
    """A valid tiny snapshot carrying ``hostile`` next to its networks (read when the file is unpickled)."""
    write_nvlabs_pickle(path, tiny_stylegan().generator, path.with_suffix(".ran"), extra={"augment_pipe": hostile})


def short_str(text):
    return b"\x8c" + bytes([len(text)]) + text.encode()


def huge_resolution(path):
    """Every tensor tiny, but synthesis blocks up to 16384²: the model they describe holds 16384² noise maps."""
    blocks = [2**i for i in range(2, 15)]
    tensors = {"mapping.fc0.weight": torch.zeros(1, 1), "synthesis.b4.torgb.weight": torch.zeros(3, 1, 1, 1),
               **{f"synthesis.b{r}.conv1.weight": torch.zeros(1, 1, 3, 3) for r in blocks}}
    write_nvlabs_pickle(path, module_from(tensors), path.with_suffix(".ran"))


def deflated_storage(path):
    """A storage record whose zip member inflates from 1.5 MB to 1.5 GiB."""
    member = deflated_zeros(96)
    with_extra(path, rebuilt_tensor(zip_record(member[3] // 4, member), (member[3] // 4,)))


def tensor_beyond_storage(path):
    """The tensors of the 1.4 GB generator, each declared on a 1-element storage (``Tensor.set_`` grows it)."""
    record = storage_record(torch.zeros(1))
    tensors = {k: rebuilt_tensor(record, tuple(shape)) for k, shape in generator_shapes(**BIG).items()}
    write_nvlabs_pickle(path, module_from(tensors), path.with_suffix(".ran"))


def broadcast_views(path):
    """The tensors of the 1.4 GB generator as stride-0 views of one number: each inside its storage, but the
    model they fill is 1.4 GB."""
    one = torch.zeros(())
    tensors = {k: one.expand(shape) for k, shape in generator_shapes(**BIG).items()}
    write_nvlabs_pickle(path, module_from(tensors), path.with_suffix(".ran"))


def deep_modules(path, depth=20_000):
    """``G_ema`` with ``_modules`` nested 20,000 deep, written opcode by opcode (pickle itself would recurse)."""
    level = b"}" + short_str("_modules") + b"}" + short_str("m")  # {"_modules": {"m": <next level>}}
    path.write_bytes(b"\x80\x04}" + short_str("G_ema") + level * depth + b"}" + b"s" * (2 * depth) + b"s.")


def memo_bomb(path):
    """Nine bytes: store None at memo index 200 million (CPython sizes its memo table by it: 3.2 GB)."""
    path.write_bytes(b"\x80\x04N" + b"r" + struct.pack("<I", 200_000_000) + b".")


def opcode_flood(path):
    """Eight million one-byte EMPTY_SET opcodes: 8 MB that build 1.7 GB of empty sets."""
    path.write_bytes(b"\x80\x04" + b"\x8f" * 8_000_000 + b".")


def numpy_dtype_flags(path):
    """A float64 dtype whose pickled state sets numpy's internal list-pickle flags, then an array of 250 million
    elements of it: numpy crashes (segmentation fault)."""
    dtype = Reduce(np.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0x0A))
    array = Reduce(NUMPY_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (250_000_000,), dtype, False, []))
    with_extra(path, array)


# --- running them -------------------------------------------------------------------------------------------------
def peak_rss(args):
    """Run ``python args`` in a subprocess: exit code, output, peak RSS in bytes (of this child alone: wait4)."""
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), usage.ru_maxrss * 1024


@pytest.fixture(scope="module")
def baseline_rss():
    code, output, rss = peak_rss(["-c", LIMIT_CPU + "import torch, zoo"])
    assert code == 0, output
    return rss


@pytest.mark.parametrize("build, needle", [
    (huge_resolution, "resolution 16384"),
    (deflated_storage, "is compressed"),
    (tensor_beyond_storage, "of a storage that holds 1"),
    (broadcast_views, "tensors hold more than the file's"),
    (deep_modules, "nest more than 32 levels"),
    (memo_bomb, "memo index 200,000,000"),
    (opcode_flood, "more than 2,000,000 pickle objects"),
    (numpy_dtype_flags, "numpy array"),
], ids=lambda x: getattr(x, "__name__", None))
def test_cli_refuses_in_one_line_within_bounded_memory(tmp_path, baseline_rss, build, needle):
    pkl, out = tmp_path / "net.pkl", tmp_path / "out"
    build(pkl)
    code, output, rss = peak_rss(["-c", CLI, "convert", "stylegan2", str(pkl), str(out)])
    lines = output.strip().splitlines()
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], output
    assert "Traceback" not in output
    assert rss - baseline_rss < GiB, f"peak RSS {rss / GiB:.2f} GiB, baseline {baseline_rss / GiB:.2f} GiB"
    assert not out.exists() and not pkl.with_suffix(".ran").exists()
    with pytest.raises(zoo.WeightsError, match=re.escape(needle)) as info:  # the library call refuses the same way
        zoo.convert("stylegan2", pkl, out)
    assert "\n" not in str(info.value)


# --- smaller breaches, in process ---------------------------------------------------------------------------------
def tiny_generator_with(path, **replace):
    """The tiny generator's snapshot with some of its tensors replaced."""
    gen = tiny_stylegan().generator
    write_nvlabs_pickle(path, module_from({**gen.state_dict(), **replace}), path.with_suffix(".ran"))


def copied_many_times(path, make):
    """One container of 300,000 elements, then ``make`` called on it ten times: 3 million copied elements."""
    big = {str(i): i for i in range(300_000)}
    with_extra(path, [make(big) for _ in range(10)])


SIX = storage_record(torch.arange(6.0))
RECORD_100K = storage_record(torch.zeros(25_000))


def replaced(**tensors):
    return lambda path: tiny_generator_with(path, **tensors)


def extra(make_hostile):
    return lambda path: with_extra(path, make_hostile())


@pytest.mark.parametrize("build, needle", [
    pytest.param(extra(lambda: rebuilt_tensor(legacy_record(2**28, bytes(24)), (6,))),
                 "declares 1,073,741,824 bytes", id="legacy-record-declares-more"),
    pytest.param(extra(lambda: rebuilt_tensor(zip_record(1000, (bytes(4), 0, zlib.crc32(bytes(4)), 4)), (1,))),
                 "declares 4,000 bytes for storage '0' but holds 4", id="zip-storage-declares-more"),
    pytest.param(extra(lambda: rebuilt_tensor(zip_record(1, (bytes(4), 0, 0, 10**9)), (1,))),
                 "declares 1,000,000,000 bytes", id="zip-member-declares-more"),
    pytest.param(extra(lambda: rebuilt_tensor(SIX, (2,), offset=5)), "reaches element 7", id="offset-past-storage"),
    pytest.param(extra(lambda: rebuilt_tensor(SIX, (2, 3), stride=(3, 2))), "reaches element 8",
                 id="stride-past-storage"),
    pytest.param(extra(lambda: rebuilt_tensor(SIX, (-1,))), "malformed size", id="negative-size"),
    pytest.param(extra(lambda: [Reduce(torch.storage._load_from_bytes, (RECORD_100K,)) for _ in range(50)]),
                 "more bytes than the file holds", id="storage-record-loaded-50-times"),
    pytest.param(lambda p: copied_many_times(p, lambda big: Reduce(set, (big,))), "more than 2,000,000 pickle objects",
                 id="set-copies"),
    pytest.param(lambda p: copied_many_times(p, lambda big: Persistent("x", big, "")),
                 "more than 2,000,000 pickle objects", id="persistent-state-copies"),
    pytest.param(extra(lambda: Reduce(np.ndarray, ((10**6,), "O"))), "calls numpy.ndarray", id="ndarray-called"),
    pytest.param(extra(lambda: Reduce(np.dtype, ("O", False, True))), "only plain numbers", id="object-dtype"),
    pytest.param(replaced(**{"synthesis.b16.conv0.noise_const": torch.zeros(8, 8)}), "needs float of shape (16, 16)",
                 id="shape-mismatch"),
    pytest.param(replaced(**{"mapping.w_avg": torch.zeros(8, dtype=torch.int64)}), "torch.int64 tensor",
                 id="integer-tensor"),
    pytest.param(replaced(**{"synthesis.b24.conv1.weight": torch.zeros(16, 16, 3, 3)}),
                 "resolution 24 (its last synthesis block) is not a power of two", id="resolution-not-power-of-two"),
    pytest.param(replaced(**{"synthesis.b12.conv1.weight": torch.zeros(16, 16, 3, 3)}),
                 "synthesis blocks [4, 8, 12, 16] are not b4, b8, … b16", id="blocks-not-consecutive"),
    pytest.param(replaced(**{"synthesis.b8.conv1.weight": torch.zeros(())}), "not a non-empty 4-d",
                 id="scalar-conv-weight"),
    pytest.param(lambda p: p.write_bytes(pickle.dumps({"G_ema": {"_modules": [1, 2]}})),
                 "not a pickled torch module state", id="modules-not-a-dict"),
])
def test_refused_in_one_line(tmp_path, build, needle):
    build(tmp_path / "net.pkl")
    with pytest.raises(zoo.WeightsError, match=re.escape(needle)) as info:
        zoo.convert("stylegan2", tmp_path / "net.pkl", tmp_path / "out")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "net.ran").exists()


def test_limits_are_module_constants(tmp_path, monkeypatch):
    write_nvlabs_pickle(tmp_path / "net.pkl", tiny_stylegan().generator, tmp_path / "ran")
    for limit, value, needle in [("MAX_FILE_BYTES", 1000, "more than the 1,000 zoo reads"),
                                 ("MAX_TENSORS", 5, "more than 5 storages"),
                                 ("MAX_PICKLE_OPS", 1000, "more than 1,000 pickle objects")]:
        with monkeypatch.context() as patch:
            patch.setattr(safe_pickle, limit, value)
            with pytest.raises(zoo.WeightsError, match=needle):
                safe_pickle.load(tmp_path / "net.pkl")


def test_plain_numpy_values_and_legit_records_still_load(tmp_path):
    values = {"scalar": np.float64(1.5), "int": np.int32(-3), "array": np.arange(6, dtype=np.float32).reshape(2, 3),
              "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)), "bools": np.array([True, False]),
              "tensor": rebuilt_tensor(legacy_record(6, np.arange(6, dtype="<f4").tobytes()), (2, 3)),
              "zip": rebuilt_tensor(zip_record(2, (np.ones(2, "<f4").tobytes(), 0,
                                                   zlib.crc32(np.ones(2, "<f4").tobytes()), 8)), (2,))}
    dnnlib = types.ModuleType("dnnlib.util")  # NVlabs' EasyDict, pickled as copyreg.__newobj__ + SETITEMS
    dnnlib.EasyDict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    sys.modules["dnnlib"], sys.modules["dnnlib.util"] = types.ModuleType("dnnlib"), dnnlib
    try:
        values["kwargs"] = dnnlib.EasyDict(resolution=1024, path="ffhq.zip")
        (tmp_path / "v.pkl").write_bytes(pickle.dumps(values, protocol=4))
    finally:
        del sys.modules["dnnlib"], sys.modules["dnnlib.util"]
    got = safe_pickle.load(tmp_path / "v.pkl")
    assert got["kwargs"] == {"resolution": 1024, "path": "ffhq.zip"}
    assert got["scalar"] == 1.5 and type(got["scalar"]) is np.float64 and got["int"] == -3
    for key in ("array", "fortran", "bools"):
        assert np.array_equal(got[key], values[key]) and got[key].dtype == values[key].dtype
    assert torch.equal(got["tensor"], torch.arange(6.0).reshape(2, 3)) and torch.equal(got["zip"], torch.ones(2))
