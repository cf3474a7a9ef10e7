"""Strict JSON for every document reluscope writes.

JSON has no NaN or Infinity (Python's ``json`` writes them, but other readers
reject the file). A non-finite number is written as ``null``, and the document
gets a top-level ``"notes"`` list that names each field where this happened,
as a path such as ``history.loss[3]``, so a reader can tell a missing value
from a non-finite one. Numpy scalars and arrays become plain JSON numbers and
lists.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ._files import atomic_write

NON_FINITE_NOTE = "non-finite numbers (NaN or Infinity) written as null at: "


def to_strict_json(value) -> tuple[object, list[str]]:
    """A JSON-ready copy of ``value`` and the paths of the non-finite numbers made null."""
    paths: list[str] = []
    return _plain(value, "", paths), paths


def dumps(document, *, indent: int | None = 2) -> str:
    """``document`` as strict JSON text, with a note when a number had to become null.

    The note is added to a top-level dict, under ``"notes"`` (a list of strings,
    after any notes the document already has).
    """
    return json.dumps(strict_document(document), indent=indent, allow_nan=False)


def strict_document(document):
    """``document`` with every non-finite number made null, and a note naming them (see
    ``dumps``): what ``to_dict`` methods return, so that ``json.dumps`` of it is valid JSON."""
    plain, paths = to_strict_json(document)
    if paths:
        if not isinstance(plain, dict):
            plain = {"value": plain}
        notes = plain.get("notes")
        notes = list(notes) if isinstance(notes, list) else ([] if notes is None else [notes])
        plain["notes"] = notes + [_note(paths)]
    return plain


def write_json(document, path) -> str:
    """Write ``document`` to ``path`` as strict JSON (see ``dumps``), atomically."""
    text = dumps(document) + "\n"
    with atomic_write(path, "w") as stream:
        stream.write(text)
    return os.fspath(path)


def _note(paths: list[str], listed: int = 20) -> str:
    """The note naming the nulled fields; a long list is cut, saying how many were left out."""
    text = NON_FINITE_NOTE + ", ".join(paths[:listed])
    return text + (f" and {len(paths) - listed} more" if len(paths) > listed else "")


def _plain(value, path: str, paths: list[str]):
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{path}.{k}" if path else str(k), paths)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}[{i}]", paths) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), path, paths)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if np.isfinite(value):
            return float(value)
        paths.append(path or "(the document)")
        return None
    return value
