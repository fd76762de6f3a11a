"""Tensors out of a network pickle without running any code from it, within bounded memory and time.

NVlabs' stylegan2-ada-pytorch pickles hold ``persistent_class`` objects that reduce to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta["module_src"]`` is the full Python source
of the networks — a normal ``pickle.load`` executes it. This unpickler resolves only a whitelist of globals: the
persistent-object hook becomes a stub that returns the object's ``__dict__`` (``meta["state"]``) and never looks at
``module_src``; tensors are rebuilt by torch's own functions, their storages read with ``torch.load(...,
weights_only=True)``. Any other global is refused with one line naming it.

A hostile file must not run away with memory or time either, so everything the pickle declares is checked against
these limits and against the file itself before it is built (a breach is a WeightsError, one line):

- ``MAX_FILE_BYTES`` (2 GiB; an official 1024² FFHQ snapshot is ~360 MB): the largest file read. It is read into
  memory once, so no length the pickle declares can make the reader ask for more than the file holds.
- ``MAX_PICKLE_OPS`` (2 million opcodes over the pickle and the storage records inside it; elements copied by a
  whitelisted constructor such as ``set(list)`` count as opcodes): every opcode builds at most one small object, so
  this bounds the unpickler's memory (a few hundred MB at worst) and time. The opcodes are counted by a scan
  (:mod:`pickletools`, which builds nothing) before unpickling, which also refuses memo indices no pickler writes
  (CPython sizes its memo table by the largest index: a 9-byte pickle could claim gigabytes).
- Payload bytes: all storages and numpy arrays together may not exceed the file's size, so one record cannot be
  materialised over and over. Each storage record (``torch.storage._load_from_bytes``) is inspected before
  ``torch.load`` reads it: every size it declares must be present in it, and a zip record (which torch never writes
  inside a pickle) must hold its members stored, not compressed (a deflated member inflates ~1000:1).
- A tensor must lie inside its storage: ``offset + Σ (size−1)·stride < storage elements`` (``Tensor.set_`` would
  silently grow the storage to whatever the pickle declares).
- ``MAX_TENSORS`` (10,000) storages per file and tensors per state dict, ``MAX_MODULE_DEPTH`` (32) levels of
  ``_modules``, and, in :func:`module_state_dict`, at most ``max_bytes`` (the file's size) of tensor data, which
  refuses many tensors viewing, or broadcasting (stride 0), one small storage into a large network.
- numpy values are plain numbers only (no object or structured dtypes), rebuilt from their bytes: numpy's own
  ``dtype.__setstate__`` takes internal flags from the pickle, and such a dtype can crash the interpreter.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Sized
from typing import Any, NoReturn

import numpy as np
import torch

from zoo.errors import WeightsError

MAX_FILE_BYTES = 2 * 1024**3
MAX_PICKLE_OPS = 2_000_000
MAX_TENSORS = 10_000
MAX_MODULE_DEPTH = 32
MAX_ZIP_MEMBERS = 16  # torch's zip serialization of one storage has 7 members

_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


class _Refused(pickle.UnpicklingError):
    """The file breaks one of the module's rules; the message says which."""


def shorten(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: hostile names and shapes can be arbitrarily long."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class _Budget:
    """What one file may still make the unpickler build: opcodes, payload bytes and storages."""

    def __init__(self, file_bytes: int) -> None:
        self.ops, self.bytes, self.storages = MAX_PICKLE_OPS, file_bytes, MAX_TENSORS

    def charge_ops(self, n: int) -> None:
        self.ops -= n
        if self.ops < 0:
            raise _Refused(f"it builds more than {MAX_PICKLE_OPS:,} pickle objects (safe_pickle.MAX_PICKLE_OPS); a "
                           f"network snapshot needs far fewer")

    def charge_bytes(self, n: int, what: str) -> None:
        self.bytes -= n
        if self.bytes < 0:
            raise _Refused(f"its {what} add up to more bytes than the file holds: one record is used many times")

    def charge_storage(self) -> None:
        self.storages -= 1
        if self.storages < 0:
            raise _Refused(f"it holds more than {MAX_TENSORS:,} storages (safe_pickle.MAX_TENSORS)")

    def scan(self, stream: io.BytesIO) -> None:
        """Walk the pickle at ``stream``'s position up to its STOP without building anything, charging every opcode,
        then rewind. The pickler numbers memo entries as it creates them, so an index past the opcodes read so far is
        forged (CPython's unpickler would allocate a memo table that large)."""
        start = stream.tell()
        for seen, (opcode, arg, _) in enumerate(pickletools.genops(stream), 1):
            self.charge_ops(1)
            if opcode.name in _MEMO_PUTS and arg > seen:
                raise _Refused(f"memo index {arg:,} after {seen:,} opcodes, which no pickler writes")
        stream.seek(start)


def _storage_dtype(cls: Any) -> torch.dtype | None:
    """The dtype of a storage class named in a storage record (``torch.FloatStorage``, ...), else None."""
    if cls is torch.UntypedStorage:
        return torch.uint8
    if isinstance(cls, type) and issubclass(cls, torch.storage._LegacyStorage):
        return cls._dtype
    return None


class _StorageRecordReader(pickle.Unpickler):
    """Reads the small pickles of a serialized storage to learn what it declares, without allocating it: storage
    classes are the only globals, and each persistent id ``('storage', class, key, location, numel[, view])`` is
    recorded in ``declared`` (key → bytes) instead of loaded."""

    def __init__(self, file: io.BytesIO, declared: dict[str, int] | None) -> None:
        super().__init__(file)
        self.declared = declared

    def find_class(self, module: str, name: str) -> Any:
        cls = getattr(torch, name, None) if module == "torch" else None
        if _storage_dtype(cls) is None:
            raise _Refused(f"a storage record imports {module}.{name}, which is not a torch storage class")
        return cls

    def persistent_load(self, pid: Any) -> None:
        ok = (self.declared is not None and isinstance(pid, tuple) and len(pid) in (5, 6)
              and pid[0] in ("storage", b"storage") and isinstance(pid[2], str) and isinstance(pid[4], int)
              and pid[4] >= 0 and (len(pid) == 5 or pid[5] is None))  # views: torch has not written them since 1.0
        dtype = _storage_dtype(pid[1]) if ok else None
        if dtype is None:
            raise _Refused(f"a storage record holds the persistent id {shorten(pid)}, not a plain torch storage")
        nbytes = pid[4] * torch._utils._element_size(dtype)
        if self.declared.setdefault(pid[2], nbytes) != nbytes:
            raise _Refused(f"a storage record declares storage {shorten(pid[2])} twice, with different sizes")


def _read_record(stream: io.BytesIO, budget: _Budget, declared: dict[str, int] | None = None) -> Any:
    budget.scan(stream)
    return _StorageRecordReader(stream, declared).load()


def _legacy_storage_bytes(data: bytes, budget: _Budget) -> int:
    """Bytes torch.load allocates for a storage record in torch's legacy format (what ``StorageBase.__reduce__``
    writes: magic number, protocol, system info, the storage's persistent ids, its keys, then per key an int64 element
    count and the raw elements), once every declared size is found present."""
    stream = io.BytesIO(data)
    if _read_record(stream, budget) != torch.serialization.MAGIC_NUMBER:
        raise _Refused("a storage record is neither torch's legacy format nor a zip archive")
    _read_record(stream, budget)  # protocol version, checked by torch.load
    _read_record(stream, budget)  # system info
    declared: dict[str, int] = {}
    _read_record(stream, budget, declared)
    keys = _read_record(stream, budget)
    if not (isinstance(keys, list) and all(isinstance(key, str) for key in keys) and len(keys) == len(declared)
            and set(keys) == declared.keys()):
        raise _Refused("a storage record's data does not list exactly the storages it declares")
    for key in keys:
        count = stream.read(8)
        end = stream.tell() + declared[key]
        if len(count) < 8 or end > len(data):
            raise _Refused(f"a storage record declares {declared[key]:,} bytes but holds {len(data):,}")
        stream.seek(end)
    return sum(declared.values())


def _zip_storage_bytes(data: bytes, budget: _Budget) -> int:
    """Bytes torch.load allocates for a storage record that is a zip archive (torch's own serialization format; torch
    itself only writes it for files, but torch.load accepts it here), once every member is found stored uncompressed
    inside the record and every storage's declared size is found in its member."""
    if data.count(b"PK\x01\x02") > MAX_ZIP_MEMBERS:  # central-directory signatures: bounds what zipfile parses
        raise _Refused(f"a storage record is a zip archive of more than {MAX_ZIP_MEMBERS} members")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            for m in members:
                if m.compress_type != zipfile.ZIP_STORED:
                    raise _Refused(f"a storage record's zip member {shorten(m.filename)} is compressed (zip method "
                                   f"{m.compress_type}); torch stores storages uncompressed, and inflating it could "
                                   f"take any amount of memory")
                if m.file_size != m.compress_size or m.header_offset + m.compress_size > len(data):
                    raise _Refused(f"a storage record's zip member {shorten(m.filename)} declares {m.file_size:,} "
                                   f"bytes but the record holds {len(data):,}")
            sizes = {m.filename: m.file_size for m in members}
            root = members[0].filename.split("/")[0] if members else ""  # torch reads every record in this folder
            if len(sizes) != len(members) or f"{root}/data.pkl" not in sizes:
                raise _Refused("a storage record is a zip archive, but not one torch wrote")
            declared: dict[str, int] = {}
            _read_record(io.BytesIO(archive.read(f"{root}/data.pkl")), budget, declared)
    except (zipfile.BadZipFile, struct.error) as exc:
        raise _Refused(f"a storage record is a broken zip archive ({exc})") from None
    for key, nbytes in declared.items():
        if nbytes > sizes.get(f"{root}/data/{key}", 0):
            raise _Refused(f"a storage record declares {nbytes:,} bytes for storage {shorten(key)} but holds "
                           f"{sizes.get(f'{root}/data/{key}', 0):,}")
    return sum(declared.values())


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *rest: Any) -> torch.Tensor:
    """torch's ``_rebuild_tensor_v2``, once the tensor is known to lie inside its storage."""
    if not isinstance(storage, torch.storage.TypedStorage):
        raise _Refused(f"a tensor is rebuilt from a {type(storage).__name__}, not a storage")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
            and all(isinstance(n, int) and n >= 0 for n in (storage_offset, *size, *stride))):
        raise _Refused(f"a tensor has a malformed size {shorten(size)}, stride {shorten(stride)} or offset")
    capacity = storage._untyped_storage.nbytes() // torch._utils._element_size(storage.dtype)
    end = storage_offset + (sum((n - 1) * s for n, s in zip(size, stride)) + 1 if all(size) else 0)
    if end > capacity:
        raise _Refused(f"a tensor of size {shorten(tuple(size))}, stride {shorten(tuple(stride))} and offset "
                       f"{storage_offset:,} reaches element {end:,} of a storage that holds {capacity:,}")
    return torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, *rest)


class PersistentState(dict):
    """The ``__dict__`` of a pickled persistent object, plus its class name in ``class_name``."""

    class_name: str = ""


class _EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access) without importing dnnlib. Pickles build
    it empty (``copyreg.__newobj__``) and fill it item by item, so it takes no copying constructor argument."""

    def __init__(self) -> None:
        super().__init__()


class _NumpyDtype:
    """Stands in for ``numpy.dtype(spec, align, copy)``: plain numbers only (bool, int, float, complex), and a state
    that sets the byte order and nothing else (numpy's own ``__setstate__`` takes internal flags from the pickle)."""

    dtype: np.dtype | None = None  # NEWOBJ builds instances without __init__

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        dtype = np.dtype(spec) if isinstance(spec, str) and len(spec) <= 8 else None
        if dtype is None or dtype.kind not in "biufc" or dtype.fields or dtype.subdtype:
            raise _Refused(f"it holds numpy values of dtype {shorten(spec)}; only plain numbers are read")
        self.dtype = dtype

    def __setstate__(self, state: Any) -> None:
        if not (self.dtype is not None and isinstance(state, tuple) and len(state) == 8
                and state[1] in ("<", ">", "|", "=") and state[2:5] == (None, None, None)):
            raise _Refused(f"it holds a numpy dtype with the state {shorten(state)}, which numpy does not write")
        self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in ("<", ">") else self.dtype


def _numpy_dtype_of(dtype: Any) -> np.dtype:
    if not isinstance(dtype, _NumpyDtype) or dtype.dtype is None:
        raise _Refused(f"a numpy value has the dtype {shorten(dtype)}, not one built by numpy.dtype")
    return dtype.dtype


def _numpy_scalar(dtype: Any, data: Any) -> Any:
    """``numpy.core.multiarray.scalar``: a number from its bytes."""
    real = _numpy_dtype_of(dtype)
    if not isinstance(data, bytes) or len(data) != real.itemsize:
        raise _Refused(f"a numpy {real} scalar is stored in {shorten(data, 20)} instead of {real.itemsize} bytes")
    return np.frombuffer(data, real)[0]


class _NumpyArray(np.ndarray):
    """A pickled ``numpy.ndarray`` (this subclass, so that the pickle's BUILD comes here): its state must give a shape,
    a plain dtype and exactly the bytes they need. Calling it, as a hostile pickle could call ``numpy.ndarray``, is
    refused."""

    def __new__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise _Refused("it calls numpy.ndarray; arrays are read only the way numpy pickles them")

    def __setstate__(self, state: Any) -> None:
        budget = self.__dict__.pop("_budget", None)
        if budget is None or not (isinstance(state, tuple) and len(state) == 5):
            raise _Refused(f"it holds a numpy array with the state {shorten(state)}, which numpy does not write")
        version, shape, dtype, fortran, data = state
        real = _numpy_dtype_of(dtype)
        if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)
                and isinstance(data, bytes) and math.prod(shape) * real.itemsize == len(data)):
            raise _Refused(f"a numpy array of shape {shorten(shape)} and dtype {real} is stored in {len(data):,} bytes"
                          if isinstance(data, bytes) else "a numpy array is not stored as bytes")
        budget.charge_bytes(len(data), "storages and numpy arrays")
        super().__setstate__((version, shape, real, bool(fortran), data))


class TensorOnlyUnpickler(pickle.Unpickler):
    """The whitelisting, bounded unpickler (see the module docstring); ``file`` must be seekable (an
    ``io.BytesIO``), as :func:`load` gives it."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._file = file
        start = file.tell()
        self._budget = _Budget(file.seek(0, io.SEEK_END) - start)
        file.seek(start)
        copying = self._copying
        numpy_globals = {(core, name): fn for core in ("numpy.core.multiarray", "numpy._core.multiarray")
                         for name, fn in (("_reconstruct", self._numpy_reconstruct), ("scalar", _numpy_scalar))}
        self._globals: dict[tuple[str, str], Any] = {
            ("torch_utils.persistence", "_reconstruct_persistent_obj"): self._reconstruct_persistent_obj,
            ("torch.storage", "_load_from_bytes"): self._load_storage,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
            ("torch", "Size"): copying(torch.Size),
            ("torch", "device"): torch.device,
            ("collections", "OrderedDict"): copying(collections.OrderedDict),
            ("dnnlib.util", "EasyDict"): _EasyDict,
            ("builtins", "set"): copying(set),
            ("builtins", "frozenset"): copying(frozenset),
            ("numpy", "ndarray"): _NumpyArray,
            ("numpy", "dtype"): _NumpyDtype,
            **numpy_globals,
        }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._globals:
            return self._globals[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"the pickle imports {module}.{name}, which is not on the tensor-only whitelist")

    def load(self) -> Any:
        self._budget.scan(self._file)
        return super().load()

    def _copying(self, make: Any) -> Any:
        """``make`` copies its arguments (``set(list)``, ``OrderedDict(dict)``): every element copied counts as an
        opcode, so that calling it again and again on one big container cannot multiply memory."""

        def call(*args: Any) -> Any:
            self._budget.charge_ops(sum(len(a) for a in args if isinstance(a, Sized)))
            return make(*args)

        return call

    def _reconstruct_persistent_obj(self, meta: Any) -> PersistentState:
        if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
            raise pickle.UnpicklingError("a persistent object without a state dict")
        self._budget.charge_ops(len(meta["state"]))
        state = PersistentState(meta["state"])
        name = meta.get("class_name", "")
        state.class_name = name[:200] if isinstance(name, str) else ""
        return state

    def _load_storage(self, data: Any) -> Any:
        """``torch.storage._load_from_bytes``, once the record is inspected: see the module docstring."""
        if not isinstance(data, bytes):
            raise _Refused(f"a storage record is a {type(data).__name__}, not bytes")
        self._budget.charge_storage()
        is_zip = data[:4] == b"PK\x03\x04"  # how torch.load tells its two formats apart
        nbytes = (_zip_storage_bytes if is_zip else _legacy_storage_bytes)(data, self._budget)
        self._budget.charge_bytes(nbytes, "storages and numpy arrays")
        return torch.load(io.BytesIO(data), weights_only=True)

    def _numpy_reconstruct(self, subtype: Any, shape: Any, typecode: Any) -> _NumpyArray:
        """``numpy.core.multiarray._reconstruct``: numpy pickles an empty array here and fills it in BUILD."""
        if subtype is not _NumpyArray or shape != (0,) or typecode != b"b":
            raise _Refused(f"it rebuilds a numpy array as {shorten((subtype, shape, typecode))}, not as numpy does")
        array = np.ndarray.__new__(_NumpyArray, (0,), np.uint8)
        array._budget = self._budget
        return array


def load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`TensorOnlyUnpickler`; a refused global, a broken file or a breached limit is a
    WeightsError. numpy arrays come back as instances of an ``ndarray`` subclass."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(MAX_FILE_BYTES + 1) if size <= MAX_FILE_BYTES else b""  # + 1: it may be growing
        if max(size, len(data)) > MAX_FILE_BYTES:
            raise WeightsError(f"refusing to load {path}: it is {max(size, len(data)):,} bytes, more than the "
                               f"{MAX_FILE_BYTES:,} zoo reads (safe_pickle.MAX_FILE_BYTES)")
        return TensorOnlyUnpickler(io.BytesIO(data)).load()
    except FileNotFoundError:
        raise WeightsError(f"{path} does not exist") from None
    except RecursionError:  # a RuntimeError; caught first for a message that says what happened
        raise WeightsError(f"refusing to load {path}: its objects nest too deeply") from None
    except MemoryError:
        raise WeightsError(f"refusing to load {path}: it asks for more memory than there is") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, RuntimeError, LookupError,
            OverflowError, AssertionError) as exc:  # AssertionError: torch.load's own checks of a storage record
        raise WeightsError(f"refusing to load {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           ) from None


def _as_tensor(value: Any, key: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, (np.ndarray, np.generic, bool, int, float)):
        return torch.as_tensor(np.array(value))
    raise WeightsError(f"{shorten(key)} is a {type(value).__name__}, not a tensor")


def module_state_dict(state: dict, prefix: str = "", *, max_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """The ``state_dict()`` of a pickled ``nn.Module`` given its ``__dict__``: ``_parameters`` and ``_buffers``
    (skipping None entries and non-persistent buffers), depth first through ``_modules``, dotted names.

    Refuses (WeightsError) anything that is not a module state, more than ``MAX_MODULE_DEPTH`` levels of modules,
    more than ``MAX_TENSORS`` tensors, and tensors totalling more than ``max_bytes`` bytes."""
    out: dict[str, torch.Tensor] = {}
    total = 0
    stack = [(state, prefix, 0)]  # explicit stack: a hostile pickle can nest modules deeper than Python recurses
    while stack:
        node, path, depth = stack.pop()
        where = shorten(path.rstrip(".") or "<root>")
        if depth > MAX_MODULE_DEPTH:
            raise WeightsError(f"modules nest more than {MAX_MODULE_DEPTH} levels deep (safe_pickle.MAX_MODULE_DEPTH)"
                               f" at {where}; a network is a few levels deep")
        parts = [node.get(kind) or {} for kind in ("_parameters", "_buffers", "_modules")] if isinstance(
            node, dict) else [None]
        skip = node.get("_non_persistent_buffers_set") or () if isinstance(node, dict) else ()
        if not (all(isinstance(part, dict) for part in parts) and isinstance(skip, (set, frozenset, list, tuple))
                and all(isinstance(name, str) for part in parts for name in part)):
            raise WeightsError(f"module {where} is not a pickled torch module state")
        params, buffers, children = parts
        skip = {name for name in skip if isinstance(name, str)}
        for name, value in [*params.items(), *((n, v) for n, v in buffers.items() if n not in skip)]:
            if value is None:
                continue
            out[path + name] = tensor = _as_tensor(value, path + name)
            total += tensor.numel() * tensor.element_size()
            if len(out) > MAX_TENSORS:
                raise WeightsError(f"it holds more than {MAX_TENSORS:,} tensors (safe_pickle.MAX_TENSORS)")
            if max_bytes is not None and total > max_bytes:
                raise WeightsError(f"its tensors hold more than the file's {max_bytes:,} bytes: tensors that share "
                                   f"or broadcast (stride 0) one storage, which no saved network does")
        for name, child in reversed(children.items()):  # reversed onto the stack: visited in order
            if child is not None:
                stack.append((child, f"{path}{name}.", depth + 1))
    return out
