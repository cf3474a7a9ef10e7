"""``reluscope scan MODEL DATA``: the dead units of a saved model on a dataset.

MODEL is a reluscope model file (``MLP.save``) or a PyTorch file (``torch.save``
of a ``state_dict``, or of a whole module), told apart by their contents, not
their names. A PyTorch file is read with ``torch.load(weights_only=True)`` only:
a pickled whole module is refused, never unpickled, with a hint to save its
``state_dict``. PyTorch is imported only when MODEL is a PyTorch file.

DATA is ``.npy``, ``.npz`` (one array, or the one ``--key`` names) or ``.csv``
(numbers; a first row that is not all numbers is a header, or ``--skip-header``),
read without unpickling anything.

Every problem with MODEL or DATA is a ValueError (or an OSError for a missing or
unreadable file) whose message names the argument and the file: ``cli.main``
prints it as one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import zipfile

DATA_EXTENSIONS = (".npy", ".npz", ".csv")
TORCH_ACTIVATIONS = ("relu", "leaky_relu", "identity")
STATE_DICT_HINT = "save the module's state_dict instead: torch.save(module.state_dict(), path)"

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_2_OR_LATER = b"\x80"  # torch.save's legacy (non-zip) format starts so
# A damaged file can name half a global ("torch._utils."): that is no object refused.
_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]*\w) was not an allowed")


def add_command(commands) -> None:
    """Register ``scan`` with the ``reluscope`` subcommands."""
    parser = commands.add_parser(
        "scan", help="the dead units of a saved model (reluscope or PyTorch) on a dataset")
    parser.add_argument("model", metavar="MODEL",
                        help="a reluscope model file (MLP.save) or a PyTorch state_dict file "
                             "(torch.save(module.state_dict(), path))")
    parser.add_argument("data", metavar="DATA",
                        help="the inputs, (n_samples, n_features), as .npy, .npz or .csv")
    parser.add_argument("--report", metavar="PATH", default=None,
                        help="also write an HTML page of the scan (default: none)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the scan as JSON (default: none)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite --report and --json files that exist (default: refuse)")
    parser.add_argument("--key", default=None,
                        help="the array of an .npz DATA holding several (default: its only one)")
    parser.add_argument("--skip-header", action="store_true",
                        help="a .csv DATA's first row is a header (default: a first row that "
                             "is not all numbers is taken as one)")
    parser.add_argument("--activation", choices=TORCH_ACTIVATIONS, default=None,
                        help="the hidden activation of a PyTorch state_dict, which a state_dict "
                             "does not record (default: relu); a reluscope file holds its own")
    parser.add_argument("--negative-slope", type=float, default=None, metavar="SLOPE",
                        help="leaky_relu's slope, with --activation leaky_relu (default: 0.01)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``reluscope scan`` on its parsed arguments; return the exit code."""
    from ._files import refuse_existing
    from ._strict_json import write_json
    from .scan import scan

    refuse_existing([path for path in (args.report, args.json) if path is not None], args.force)
    model = load_model(args.model, activation=args.activation,
                       negative_slope=args.negative_slope)
    x = load_data(args.data, key=args.key, skip_header=args.skip_header)
    x = check_features(x, model.n_features, args.data, args.model)
    report = scan(model, x)
    # The files first: a write that fails ends in one error line, not after the table.
    written = []
    if args.json is not None:
        written.append(write_json(report.to_dict(), args.json))
    if args.report is not None:
        title = f"{os.path.basename(args.model)} on {os.path.basename(args.data)}"
        written.append(report.to_html(args.report, title=title))
    print(report)
    for path in written:
        print(f"wrote {path}")
    return 0


# -- MODEL ---------------------------------------------------------------------------------

def load_model(path: str, *, activation: str | None = None, negative_slope: float | None = None):
    """Return the MLP saved at ``path``: a reluscope model file or a PyTorch file.

    ``activation`` and ``negative_slope`` say what a PyTorch state_dict cannot
    (default relu); a reluscope file records its own, and refuses them.
    """
    from .errors import CheckpointError
    from .model import MLP

    if negative_slope is not None and activation != "leaky_relu":
        raise ValueError("--negative-slope is the slope of leaky_relu: give it with "
                         "--activation leaky_relu")
    kind = model_file_kind(path)
    if kind == "reluscope":
        if activation is not None:
            raise ValueError(f"--activation is for a PyTorch state_dict; MODEL {path} is a "
                             "reluscope model file, which records its activation")
        try:
            return MLP.load(path)
        except CheckpointError as error:
            raise CheckpointError(f"MODEL {error}") from None  # its message opens with the path
    if kind == "torch":
        return _load_torch(path, activation or "relu", negative_slope)
    raise ValueError(f"MODEL {path} is neither a reluscope model file (MLP.save) nor a "
                     "PyTorch file (torch.save)")


def model_file_kind(path: str) -> str | None:
    """"reluscope", "torch", or None, from the first bytes and, for a zip, its member names.

    A file that might be a damaged reluscope file (empty, a zip whose directory
    cannot be read, a lone .npy) is called "reluscope": ``MLP.load`` then says
    what is wrong with it.
    """
    with open(path, "rb") as stream:
        head = stream.read(len(_ZIP_MAGIC))
    if head == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, ValueError, EOFError):
            return "reluscope"
        # torch.save writes <name>/data.pkl; an .npz holds only <array>.npy members.
        if not any(name.endswith(".npy") for name in names) and any(
                name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            return "torch"
        return "reluscope"
    if head.startswith(_PICKLE_PROTOCOL_2_OR_LATER):
        return "torch"
    if not head or head.startswith(b"\x93NUM"):  # empty, or a lone .npy array
        return "reluscope"
    return None


def _load_torch(path: str, activation: str, negative_slope: float | None):
    from .model import MLP

    try:
        import torch
    except ImportError:
        raise ImportError(f"MODEL {path} is a PyTorch file; reading it needs PyTorch: "
                          "pip install 'reluscope[torch]'") from None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as error:
        raise ValueError(_refused(path, str(error))) from None
    except Exception as error:  # a damaged file: torch raises RuntimeError, EOFError, ...
        raise ValueError(f"MODEL {path} cannot be read by torch.load (damaged?): "
                         f"{type(error).__name__}: {_first_sentence(str(error))}") from None
    try:
        if isinstance(content, torch.nn.Module):
            # Only reachable when the caller's process allowlisted the module's classes.
            return MLP.from_torch(content)
        if not isinstance(content, dict):
            raise ValueError(f"holds a {type(content).__name__}, not a state_dict; "
                             f"{STATE_DICT_HINT}")
        slope = {} if negative_slope is None else {"negative_slope": negative_slope}
        return MLP.from_weights(_state_dict_pairs(content, torch), activation,
                                layout="torch", **slope)
    except (ValueError, TypeError) as error:
        raise ValueError(f"MODEL {path}: {error}") from None


def _state_dict_pairs(state: dict, torch) -> list:
    """Return the (weight, bias) pairs of a state_dict's Linear layers, in the dict's order.

    ``nn.Sequential.state_dict()`` lists its layers in the order they run.
    """
    layers: dict[str, dict] = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise ValueError(f"key {name!r} ({type(name).__name__}) is not a parameter's name: "
                             f"not a state_dict; {STATE_DICT_HINT}")
        if not torch.is_tensor(value):
            raise ValueError(f"entry {name!r} is not a tensor (it is {type(value).__name__}): "
                             f"not a state_dict; {STATE_DICT_HINT}")
        prefix, _, role = name.rpartition(".")
        if role not in ("weight", "bias"):
            raise ValueError(f"entry {name!r} is not the weight or bias of an nn.Linear: "
                             "scan reads the state_dict of an nn.Sequential of nn.Linear layers "
                             "with ReLU, LeakyReLU or Identity between them")
        layers.setdefault(prefix, {})[role] = value
    if not layers:
        raise ValueError("the state_dict is empty")
    pairs = []
    for prefix, entry in layers.items():
        label = f"{prefix}." if prefix else ""
        if "weight" not in entry:
            raise ValueError(f"it has {label}bias but no {label}weight")
        weight = entry["weight"]
        if weight.ndim != 2:
            raise ValueError(f"{label}weight has shape {tuple(weight.shape)}, not "
                             "(out_features, in_features): not an nn.Linear")
        pairs.append((weight, entry.get("bias")))
    return pairs


def _refused(path: str, message: str) -> str:
    """One line for what ``torch.load(weights_only=True)`` refused to unpickle."""
    found = _UNSUPPORTED_GLOBAL.search(message)
    if found is None:
        # The reason is the first paragraph after torch's preamble.
        detail = message.split("WeightsUnpickler error:")[-1].strip().split("\n\n")[0]
        return (f"MODEL {path} cannot be read by torch.load(weights_only=True) (damaged?): "
                f"{_first_sentence(detail)}")
    name = found.group(1)
    what = (f"a whole pickled PyTorch module ({name})" if name.startswith("torch.nn.")
            else f"a pickled {name}")
    return (f"MODEL {path} holds {what}, which torch.load(weights_only=True) refuses and "
            f"reluscope never unpickles; {STATE_DICT_HINT}")


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    return text.split(". ")[0].rstrip(".") if text else "no details"


# -- DATA ----------------------------------------------------------------------------------

def load_data(path: str, *, key: str | None = None, skip_header: bool = False):
    """Return the array in ``path`` (.npy, .npz or .csv), as stored; nothing unpickled."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in DATA_EXTENSIONS:
        shown = repr(extension) if extension else "none"
        raise ValueError(f"DATA {path}: unknown extension {shown}; give a .npy, .npz or "
                         ".csv file")
    if key is not None and extension != ".npz":
        raise ValueError(f"--key names an array of an .npz file; DATA {path} is {extension}")
    if skip_header and extension != ".csv":
        raise ValueError(f"--skip-header is for a .csv file; DATA {path} is {extension}")
    if os.path.isdir(path):
        raise ValueError(f"DATA {path} is a folder; give a .npy, .npz or .csv file")
    if extension == ".csv":
        return _read(path, "a .csv of numbers", lambda: _load_csv(path, skip_header))
    return _read(path, f"a {extension} file", lambda: _load_numpy(path, key))


def _read(path: str, what: str, reader):
    """``reader()``, with what a damaged or foreign file makes it raise as one ValueError."""
    try:
        return reader()
    except (FileNotFoundError, IsADirectoryError, PermissionError, _DataError):
        raise
    except Exception as error:  # ValueError, EOFError, BadZipFile, zlib.error, MemoryError...
        raise ValueError(f"DATA {path} cannot be read as {what}: "
                         f"{' '.join(str(error).split()) or type(error).__name__}") from None


class _DataError(ValueError):
    """A readable DATA file that holds the wrong thing: its message is final."""


def _load_numpy(path: str, key: str | None):
    import numpy as np

    # The file is opened here, not by np.load, which leaves it open when the zip
    # directory cannot be read.
    with open(path, "rb") as stream:
        loaded = np.load(stream, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        return _archive_array(loaded, path, key)


def _archive_array(loaded, path: str, key: str | None):
    with loaded:  # an .npz archive
        names = list(loaded.files)
        if key is None:
            if len(names) != 1:
                raise _DataError(
                    f"DATA {path} holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                    "name one with --key")
            key = names[0]
        elif key not in names:
            raise _DataError(f"DATA {path} has no array {key!r}; it holds "
                             f"{', '.join(names) or 'none'}")
        return loaded[key]


def _load_csv(path: str, skip_header: bool):
    """Return the numbers of a .csv, one sample a line; errors name the file's line (from 1)."""
    import numpy as np

    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if numbered and (skip_header or not _all_numbers(numbered[0][1])):
        numbered = numbered[1:]
    if not numbered:
        raise _DataError(f"DATA {path} holds no samples")
    width = len(numbered[0][1].split(","))
    values = []
    for number, line in numbered:
        fields = line.split(",")
        if len(fields) != width:
            raise _DataError(f"DATA {path} line {number} has {len(fields)} values where line "
                             f"{numbered[0][0]} has {width}")
        try:
            values.append([float(field) for field in fields])
        except ValueError:
            field = next(f for f in fields if not _all_numbers(f))
            raise _DataError(f"DATA {path} line {number}: {field.strip()!r} is not a "
                             "number") from None
    return np.array(values, dtype=np.float64)


def _all_numbers(line: str) -> bool:
    try:
        [float(field) for field in line.split(",")]
    except ValueError:
        return False
    return True


def check_features(array, n_features: int, data_path: str, model_path: str):
    """``array`` as the C-contiguous float32 (n_samples, n_features) the scan takes."""
    import numpy as np

    from ._validation import as_features

    if array.dtype.kind not in "biuf":
        reason = "complex numbers" if array.dtype.kind == "c" else f"{array.dtype} values"
        raise ValueError(f"DATA {data_path} holds {reason}, not real numbers")
    if array.ndim == 1 and n_features == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ValueError(f"DATA {data_path} has shape {array.shape}; scan needs (n_samples, "
                         f"n_features) with n_features = {n_features}, as MODEL expects")
    if array.shape[0] == 0:
        raise ValueError(f"DATA {data_path} holds no samples")
    if array.shape[1] != n_features:
        raise ValueError(f"DATA {data_path} has {array.shape[1]} features (columns) but MODEL "
                         f"{model_path} expects {n_features}")
    x = as_features(array, f"DATA {data_path}", n_features, check_finite=False)
    bad = ~np.isfinite(x)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise ValueError(f"DATA {data_path} has {int(bad.sum())} NaN or Inf values (after "
                         f"conversion to float32), the first at sample {row}, "
                         f"feature {column} (from 0)")
    return x
