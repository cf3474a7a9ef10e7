"""The container of model and checkpoint files: named arrays and a JSON manifest in one .npz.

An archive is an uncompressed numpy ``.npz`` (a zip of ``.npy`` files) holding
the arrays by name and the manifest under ``manifest.json``: UTF-8 JSON text
stored as a uint8 array. The manifest says what the file is (``format``), the
layout version it follows (``schema_version``) and the reluscope that wrote it
(``reluscope_version``); the rest is up to the format.

Reading never unpickles (``allow_pickle=False``) and never imports or calls
anything the file names: loading a file runs no code from it.

The manifest is strict JSON, and its floats come back bit for bit: a finite
float is written by ``repr`` (which round-trips), a NaN or infinity as
``{"non_finite": "nan" | "inf" | "-inf"}``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import zipfile
import zlib
from typing import Any

import numpy as np
from numpy.lib.npyio import NpzFile

from . import _core
from ._files import atomic_write
from .errors import CheckpointError

MANIFEST_KEY = "manifest.json"
_ZIP_MAGIC = b"PK\x03\x04"  # a zip's first local file header
_NPY_MAGIC = b"\x93NUMPY"

# What each format is, for the error raised when a file of one kind is given
# where another is expected.
FORMAT_NAMES = {
    "reluscope.model": ("a reluscope model", "reluscope.MLP.load"),
    "reluscope.checkpoint": ("a reluscope checkpoint", "reluscope.Trainer.load_checkpoint"),
}


def write_archive(path, manifest: dict, arrays: dict[str, np.ndarray]) -> str:
    """Write ``arrays`` and ``manifest`` (with ``format`` and ``schema_version``) to ``path``.

    The path is used as given (numpy would add ".npz" to a name without it).
    The write is atomic: see ``reluscope._files``.
    """
    if MANIFEST_KEY in arrays:
        raise ValueError(f"{MANIFEST_KEY!r} is reserved for the manifest")
    manifest = {**manifest, "reluscope_version": _core.__version__}
    text = json.dumps(to_exact_json(manifest, "manifest"), allow_nan=False)
    # Any: numpy's stub types savez's **kwds as if one could be its allow_pickle flag.
    contents: dict[str, Any] = {
        name: np.ascontiguousarray(array) for name, array in arrays.items()
    }
    contents[MANIFEST_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path, "wb") as stream:
        np.savez(stream, **contents)
    return os.fspath(path)


def read_archive(path, expected_format: str, schema_version: int):
    """(manifest, arrays) of the archive at ``path``, which must be ``expected_format``.

    Raises CheckpointError, naming the file, when it is not an archive, is
    truncated or corrupted, has no manifest, is of another format, or follows a
    newer schema than ``schema_version``. A missing file raises FileNotFoundError.
    """
    name = os.fspath(path)
    # The file is opened here, not by np.load, which leaves it open when the zip
    # directory cannot be read.
    with translated_errors(name), open(name, "rb") as stream:
        magic = stream.read(len(_ZIP_MAGIC))
        if not magic:
            raise CheckpointError(f"{name} is empty")
        if magic != _ZIP_MAGIC and not magic.startswith(_NPY_MAGIC[:len(magic)]):
            raise CheckpointError(f"{name} is not a reluscope file: not an .npz archive")
        stream.seek(0)
        archive = np.load(stream, allow_pickle=False)
        if not isinstance(archive, NpzFile):
            raise CheckpointError(f"{name} is not a reluscope file: a single .npy array, "
                                  "not an .npz archive")
        with archive:
            # Every array is read here, so a damaged member fails now, not later.
            arrays = {key: archive[key] for key in archive.files}
    if MANIFEST_KEY not in arrays:
        raise CheckpointError(f"{name} is not a reluscope file: an .npz archive without "
                              f"the {MANIFEST_KEY} manifest")
    manifest = _parse_manifest(name, arrays.pop(MANIFEST_KEY))
    found = manifest.get("format")
    if found != expected_format:
        expected, _ = FORMAT_NAMES[expected_format]
        if found in FORMAT_NAMES:
            what, loader = FORMAT_NAMES[found]
            raise CheckpointError(f"{name} is {what}, not {expected}; read it with {loader}")
        raise CheckpointError(f"{name} is not {expected}: its manifest says format {found!r}")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{name} has no valid schema_version in its manifest "
                              f"(got {version!r})")
    if version > schema_version:
        raise CheckpointError(
            f"{name} needs schema version {version} of {expected_format} (it was written by "
            f"reluscope {manifest.get('reluscope_version', 'unknown')}); this reluscope "
            f"({_core.__version__}) reads versions up to {schema_version}: upgrade reluscope")
    return manifest, arrays


@contextlib.contextmanager
def translated_errors(name: str):
    """Turn what a damaged or foreign file makes the readers raise into CheckpointError.

    A missing file stays FileNotFoundError; a CheckpointError passes through.
    """
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, PermissionError, CheckpointError):
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise CheckpointError(f"{name} is truncated or corrupted: {error}") from error
    except MemoryError as error:
        raise CheckpointError(f"{name} declares an array too large to load: {error}") from error
    except Exception as error:
        # Whatever else a damaged file makes the zip, .npy or JSON readers raise
        # (NotImplementedError for a flipped "encrypted" flag, tokenize errors
        # in a .npy header, OverflowError, RecursionError, ...): the file is bad.
        raise CheckpointError(f"{name} cannot be read as a reluscope file: "
                              f"{type(error).__name__}: {error}") from error


def to_exact_json(value, where: str):
    """``value`` as JSON-ready data whose floats round-trip exactly (see the module notes).

    Numpy scalars become Python numbers and tuples lists; anything else that
    is not JSON raises a TypeError naming where it was found.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a key {key!r} that is not a string")
            out[key] = to_exact_json(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_exact_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isfinite(value):
            return value
        return {"non_finite": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    raise TypeError(f"{where} holds a {type(value).__name__} ({value!r}), which a "
                    "reluscope file cannot store: only JSON values and numbers")


def _exact_float(entry: dict):
    if set(entry) == {"non_finite"} and entry["non_finite"] in ("nan", "inf", "-inf"):
        return float(entry["non_finite"])
    return entry


def _reject_constant(constant: str):
    raise ValueError(f"the manifest holds {constant}, which is not strict JSON")


def _parse_manifest(name: str, raw: np.ndarray) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{name} has a {MANIFEST_KEY} that is not UTF-8 text")
    try:
        manifest = json.loads(raw.tobytes().decode("utf-8"), object_hook=_exact_float,
                              parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{name} has a damaged {MANIFEST_KEY}: {error}") from error
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{name} has a {MANIFEST_KEY} that is not a JSON object")
    return manifest
