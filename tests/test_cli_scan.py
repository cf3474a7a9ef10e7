"""``reluscope scan MODEL DATA``: a saved model's dead units on a dataset, as text, JSON, HTML."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import reluscope as rs
from reluscope import cli

# Units planted dead: zero incoming weights and a negative bias, so their
# pre-activation is the bias (< 0) on every sample. Every other unit has a
# bias of 5 and weights of at most 0.1 in size on inputs in [-1, 1]: it fires
# on every sample (its pre-activation stays above 5 - 0.1 * fan_in * 10 > 0).
DEAD = {0: [1, 3], 1: [2]}


def planted_model() -> rs.MLP:
    rng = np.random.default_rng(0)
    sizes = [3, 5, 4, 2]
    pairs = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weight = rng.uniform(-0.1, 0.1, size=(fan_in, fan_out)).astype(np.float32)
        bias = np.full(fan_out, 5.0, dtype=np.float32)
        for unit in DEAD.get(i, []):
            weight[:, unit] = 0.0
            bias[unit] = -1.0
        pairs.append((weight, bias))
    return rs.MLP.from_weights(pairs)


def inputs(n=40) -> np.ndarray:
    return np.random.default_rng(1).uniform(-1, 1, size=(n, 3))


@pytest.fixture
def model_path(tmp_path):
    return str(planted_model().save(tmp_path / "model.npz"))


@pytest.fixture
def data_path(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, inputs())
    return str(path)


def run_main(capsys, *argv):
    """(exit status, stdout, stderr lines) of ``reluscope scan argv`` run in this process."""
    try:
        status = cli.main(["scan", *map(str, argv)])
    except SystemExit as exit_:  # argparse exits on a bad option
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err.splitlines()


def assert_planted_dead_units(table: str, document: dict):
    lines = table.splitlines()
    assert lines[0].startswith("Dead-unit scan over 40 samples")
    # layer, units, dead: the planted counts, in the scan's own table.
    assert lines[2].split()[:3] == ["0", "5", "2"]
    assert lines[3].split()[:3] == ["1", "4", "1"]
    assert lines[4].split()[:3] == ["all", "9", "3"]
    assert [layer["dead_units"] for layer in document["layers"]] == [DEAD[0], DEAD[1]]
    assert document["n_dead"] == 3 and document["n_samples"] == 40


def test_a_saved_model_on_npy_data_prints_the_table_and_writes_json_and_html(
        capsys, tmp_path, model_path, data_path):
    json_path, html_path = tmp_path / "out" / "r.json", tmp_path / "r.html"
    status, out, err = run_main(capsys, model_path, data_path, "--json", json_path,
                                "--report", html_path)
    assert (status, err) == (0, [])
    report = rs.scan(rs.MLP.load(model_path), inputs())
    assert out == f"{report}\nwrote {json_path}\nwrote {html_path}\n"
    text = json_path.read_text()
    document = json.loads(text, parse_constant=pytest.fail)  # strict JSON: no NaN
    assert document == report.to_dict()
    assert_planted_dead_units(out, document)
    page = html_path.read_text()
    assert "<title>reluscope scan: model.npz on x.npy</title>" in page
    assert "3 of 9 hidden units dead" in page
    assert "<td class=\"units\">1, 3</td>" in page and "<td class=\"units\">2</td>" in page
    assert str(report).splitlines()[1] in page


def test_npz_data_with_one_array_or_a_key(capsys, tmp_path, model_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    np.savez(one, inputs())
    np.savez(two, labels=np.zeros(40), x=inputs())
    status, out, _ = run_main(capsys, model_path, one)
    assert status == 0
    assert_planted_dead_units(out, rs.scan(rs.MLP.load(model_path), inputs()).to_dict())
    assert run_main(capsys, model_path, two, "--key", "x")[:2] == (0, out)


def test_csv_data_with_or_without_a_header(capsys, tmp_path, model_path):
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in inputs())
    plain, named, numbered = (tmp_path / name for name in ("a.csv", "b.csv", "c.csv"))
    plain.write_text(rows + "\n")
    named.write_text("f0, f1, f2\n" + rows)  # not numbers: a header, found without help
    numbered.write_text("0,1,2\n" + rows)  # numbers: a sample, unless --skip-header
    status, out, _ = run_main(capsys, model_path, plain)
    assert status == 0
    assert_planted_dead_units(out, rs.scan(rs.MLP.load(model_path), inputs()).to_dict())
    assert run_main(capsys, model_path, named)[:2] == (0, out)
    assert run_main(capsys, model_path, numbered, "--skip-header")[:2] == (0, out)
    status, counted, _ = run_main(capsys, model_path, numbered)
    assert status == 0 and counted.startswith("Dead-unit scan over 41 samples")


def test_a_torch_state_dict_scans_as_the_model_it_holds(capsys, tmp_path, data_path):
    torch = pytest.importorskip("torch")
    model = planted_model()
    path = tmp_path / "model.pt"
    torch.save(model.to_torch().state_dict(), path)
    json_path = tmp_path / "r.json"
    status, out, err = run_main(capsys, path, data_path, "--json", json_path)
    assert (status, err) == (0, [])
    assert out == f"{rs.scan(model, inputs())}\nwrote {json_path}\n"
    assert_planted_dead_units(out, json.loads(json_path.read_text()))


def test_a_state_dicts_activation_is_given_on_the_command_line(capsys, tmp_path, data_path):
    torch = pytest.importorskip("torch")
    model = planted_model()
    path = tmp_path / "model.pt"
    torch.save(model.to_torch().state_dict(), path)
    leaky = rs.MLP.from_weights(model.get_weights(), "leaky_relu", negative_slope=0.2)
    status, out, _ = run_main(capsys, path, data_path, "--activation", "leaky_relu",
                              "--negative-slope", "0.2")
    assert status == 0 and out == f"{rs.scan(leaky, inputs())}\n"
    identity = rs.MLP.from_weights(model.get_weights(), "identity")
    status, out, _ = run_main(capsys, path, data_path, "--activation", "identity")
    assert status == 0 and out == f"{rs.scan(identity, inputs())}\n"


def test_torch_is_imported_only_for_a_torch_file(model_path, data_path):
    code = ("import sys; from reluscope import cli; status = cli.main(['scan', sys.argv[1], "
            "sys.argv[2]]); assert 'torch' not in sys.modules, 'torch imported'; "
            "sys.exit(status)")
    result = subprocess.run([sys.executable, "-c", code, model_path, data_path],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Dead-unit scan over 40 samples" in result.stdout


def test_the_installed_command_scans(model_path, data_path):
    script = os.path.join(os.path.dirname(sys.executable), "reluscope")
    if not os.path.exists(script):
        pytest.skip("the reluscope script is not installed next to this Python")
    result = subprocess.run([script, "scan", model_path, data_path], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[4].split()[:3] == ["all", "9", "3"]


# -- bad input: exit status 2 and one line on stderr ----------------------------------------

def write_bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def truncated_copy_of(make):
    def write(path):
        make(path)
        path.write_bytes(path.read_bytes()[:200])
    return write


BAD_DATA = [
    ("x.txt", lambda p: p.write_text("1,2,3\n"), "unknown extension '.txt'; give a .npy"),
    ("x", lambda p: p.write_text("1,2,3\n"), "unknown extension none"),
    ("wide.npy", lambda p: np.save(p, np.ones((4, 5))),
     "has 5 features (columns) but MODEL"),
    ("column.npy", lambda p: np.save(p, np.ones(4)), "has shape (4,); scan needs"),
    ("images.npy", lambda p: np.save(p, np.ones((4, 3, 2))), "has shape (4, 3, 2)"),
    ("none.npy", lambda p: np.save(p, np.ones((0, 3))), "holds no samples"),
    ("nan.npy", lambda p: np.save(p, np.where(np.eye(3, dtype=bool), np.nan, 0.0)),
     ("has 3 NaN or Inf values (after conversion to float32), the first at sample 0, "
      "feature 0 (from 0)")),
    ("huge.npy", lambda p: np.save(p, np.full((2, 3), 1e39)), "has 6 NaN or Inf values"),
    ("inf.csv", lambda p: p.write_text("1,2,3\n4,inf,6\n"), "the first at sample 1, feature 1"),
    ("complex.npy", lambda p: np.save(p, np.ones((3, 3), dtype=complex)),
     "holds complex numbers, not real numbers"),
    ("times.npy", lambda p: np.save(p, np.ones((3, 3)).astype("m8[s]")),
     "holds timedelta64[s] values"),
    ("strings.npy", lambda p: np.save(p, np.array([["a", "b", "c"]] * 3)), "holds <U1 values"),
    ("pickled.npy", lambda p: np.save(p, np.array([{}] * 3, dtype=object)), "allow_pickle"),
    ("truncated.npy", truncated_copy_of(lambda p: np.save(p, np.ones((40, 3)))),
     "cannot be read as a .npy file"),
    ("garbage.npy", write_bytes(b"not numpy at all"), "cannot be read as a .npy file"),
    ("truncated.npz", truncated_copy_of(lambda p: np.savez(p, x=np.ones((40, 3)))),
     "cannot be read as a .npz file"),
    ("two.npz", lambda p: np.savez(p, a=np.ones((2, 3)), b=np.ones((2, 3))),
     "holds 2 arrays (a, b); name one with --key"),
    ("empty.npz", lambda p: np.savez(p), "holds 0 arrays (none)"),
    ("empty.csv", lambda p: p.write_text(""), "holds no samples"),
    ("header-only.csv", lambda p: p.write_text("a,b,c\n\n"), "holds no samples"),
    ("words.csv", lambda p: p.write_text("a,b,c\n1,2,3\n\n4, x ,6\n"),
     "words.csv line 4: 'x' is not a number"),
    ("ragged.csv", lambda p: p.write_text("\n1,2,3\n4,5\n"),
     "ragged.csv line 3 has 2 values where line 2 has 3"),
    ("latin1.csv", write_bytes(b"\xe9,1,2\n1,2,3\n"), "cannot be read as a .csv"),
]


@pytest.mark.parametrize("name,write,text", BAD_DATA, ids=[case[0] for case in BAD_DATA])
def test_bad_data_is_one_line_and_exit_status_2(capsys, tmp_path, model_path, name, write,
                                                text):
    path = tmp_path / name
    write(path)
    assert_one_line_error(run_main(capsys, model_path, path), text)


def assert_one_line_error(result, text):
    status, out, lines = result
    assert status == 2
    assert out == ""
    assert len(lines) == 1, lines
    assert lines[0].startswith("reluscope scan: error: ")
    assert "Traceback" not in lines[0]
    assert text in lines[0], lines[0]


def test_missing_files_and_folders_are_one_line(capsys, tmp_path, model_path, data_path):
    missing = tmp_path / "missing"
    assert_one_line_error(run_main(capsys, missing, data_path),
                          f"{missing}: No such file or directory")
    assert_one_line_error(run_main(capsys, model_path, f"{missing}.npy"),
                          f"{missing}.npy: No such file or directory")
    assert_one_line_error(run_main(capsys, tmp_path, data_path), "Is a directory")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert_one_line_error(run_main(capsys, model_path, folder), f"DATA {folder} is a folder")


def test_options_that_do_not_fit_the_files_are_one_line(capsys, tmp_path, model_path,
                                                        data_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, x=inputs())
    assert_one_line_error(run_main(capsys, model_path, npz, "--key", "y"),
                          "has no array 'y'; it holds x")
    assert_one_line_error(run_main(capsys, model_path, data_path, "--key", "x"),
                          "--key names an array of an .npz file")
    assert_one_line_error(run_main(capsys, model_path, data_path, "--skip-header"),
                          "--skip-header is for a .csv file")
    assert_one_line_error(run_main(capsys, model_path, data_path, "--activation", "relu"),
                          f"MODEL {model_path} is a reluscope model file, which records its "
                          "activation")
    assert_one_line_error(run_main(capsys, model_path, data_path, "--negative-slope", "0.1"),
                          "give it with --activation leaky_relu")
    assert_one_line_error(run_main(capsys, model_path, data_path, "--activation", "tanh"),
                          "argument --activation: invalid choice: 'tanh'")
    (tmp_path / "file").write_text("")
    assert_one_line_error(run_main(capsys, model_path, data_path, "--json",
                                   tmp_path / "file" / "r.json"), "is a file, not a folder")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("name,write,text", [
    ("empty.npz", lambda p: p.write_bytes(b""), "MODEL {path} is empty"),
    ("text.npz", lambda p: p.write_text("hello"),
     "is neither a reluscope model file (MLP.save) nor a PyTorch file (torch.save)"),
    ("array.npz", lambda p: p.write_bytes(open_npy_bytes()), "a single .npy array"),
    ("data.npz", lambda p: np.savez(p, x=np.ones(3)), "an .npz archive without the manifest"),
    ("truncated.npz", truncated_copy_of(lambda p: planted_model().save(p)),
     "MODEL {path} is truncated or corrupted"),
])
def test_a_bad_model_file_is_one_line(capsys, tmp_path, data_path, name, write, text):
    path = tmp_path / name
    write(path)
    assert_one_line_error(run_main(capsys, path, data_path), text.format(path=path))


def open_npy_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ones(3))
    return buffer.getvalue()


def test_a_pickled_torch_module_is_refused_with_a_hint(capsys, tmp_path, data_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "module.pt"
    torch.save(planted_model().to_torch(), path)
    assert_one_line_error(
        run_main(capsys, path, data_path),
        f"MODEL {path} holds a whole pickled PyTorch module "
        "(torch.nn.modules.container.Sequential), which torch.load(weights_only=True) "
        "refuses and reluscope never unpickles; save the module's state_dict instead: "
        "torch.save(module.state_dict(), path)")


def torch_file_cases():
    def save(make, legacy=False):
        def write(path):
            torch = pytest.importorskip("torch")
            torch.save(make(torch), path, _use_new_zipfile_serialization=not legacy)
        return write

    def linear_state(torch, *sizes):
        layers = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        return torch.nn.Sequential(*layers).state_dict()

    return [
        ("batchnorm.pt", save(lambda t: t.nn.Sequential(t.nn.Linear(3, 4), t.nn.BatchNorm1d(4),
                                                        t.nn.Linear(4, 2)).state_dict()),
         "entry '1.running_mean' is not the weight or bias of an nn.Linear"),
        ("conv.pt", save(lambda t: t.nn.Sequential(t.nn.Conv1d(3, 4, 2)).state_dict()),
         "0.weight has shape (4, 3, 2), not (out_features, in_features)"),
        ("unchained.pt", save(lambda t: {**linear_state(t, 3, 4), "1.weight": t.ones(2, 5),
                                          "1.bias": t.ones(2)}), "MODEL {path}: "),
        ("bias-only.pt", save(lambda t: {"0.bias": t.ones(3)}), "has 0.bias but no 0.weight"),
        ("empty.pt", save(lambda t: {}), "the state_dict is empty"),
        ("checkpoint.pt", save(lambda t: {"model": linear_state(t, 3, 2), "epoch": 3}),
         "entry 'model' is not a tensor (it is OrderedDict): not a state_dict"),
        ("int-key.pt", save(lambda t: {1: t.ones(2)}), "key 1 (int) is not a parameter's name"),
        ("list.pt", save(lambda t: [t.ones(2)]), "holds a list, not a state_dict"),
        ("nan.pt", save(lambda t: {"0.weight": t.full((2, 3), float("nan"))}), "NaN"),
        ("numpy.pt", save(lambda t: {"0.weight": np.ones((2, 3))}),
         "holds a pickled numpy"),
        ("damaged-pickle.pt", write_bytes(b"\x80\x02garbage"),
         "cannot be read by torch.load(weights_only=True) (damaged?): Unsupported operand"),
        ("damaged-legacy.pt", truncated_copy_of(save(lambda t: linear_state(t, 3, 2),
                                                      legacy=True)),
         "cannot be read by torch.load"),
        ("truncated.pt", truncated_copy_of(save(lambda t: linear_state(t, 3, 2))),
         "MODEL {path} is truncated or corrupted"),
    ]


@pytest.mark.parametrize("name,write,text", torch_file_cases(),
                         ids=[case[0] for case in torch_file_cases()])
def test_a_bad_torch_file_is_one_line(capsys, tmp_path, data_path, name, write, text):
    path = tmp_path / name
    write(path)
    assert_one_line_error(run_main(capsys, path, data_path), text.format(path=path))


def test_a_state_dict_with_a_wrong_feature_count_names_both(capsys, tmp_path, data_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(7, 2)).state_dict(), path)
    assert_one_line_error(run_main(capsys, path, data_path),
                          f"DATA {data_path} has 3 features (columns) but MODEL {path} "
                          "expects 7")


def test_a_torch_file_without_torch_installed_names_the_extra(capsys, tmp_path, data_path,
                                                              monkeypatch):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save(planted_model().to_torch().state_dict(), path)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    status, out, lines = run_main(capsys, path, data_path)
    assert (status, out) == (1, "")
    assert lines == [f"reluscope: MODEL {path} is a PyTorch file; reading it needs PyTorch: "
                     "pip install 'reluscope[torch]'"]


def test_existing_outputs_are_refused_without_force(tmp_path, capsys):
    model_path = rs.MLP([3, 4, 2], seed=0).save(tmp_path / "model.rsm")
    data_path = tmp_path / "x.npy"
    np.save(data_path, np.ones((5, 3), np.float32))
    out = tmp_path / "scan.json"
    out.write_text("keep me")
    assert cli.main(["scan", str(model_path), str(data_path), "--json", str(out)]) == 2
    assert "scan.json exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert cli.main(["scan", str(model_path), str(data_path), "--json", str(out),
                     "--force"]) == 0
    assert out.read_text() != "keep me"
