"""The command line ends every expected failure in one line on stderr and exit status 2."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from reluscope import cli


def run_main(capsys, *argv, stdout=None):
    """(exit status, stderr lines) of ``reluscope argv`` run in this process.

    ``stdout``: a list that receives what was printed on stdout.
    """
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse exits on a bad option
        status = exit_.code
    captured = capsys.readouterr()
    if stdout is not None:
        stdout.append(captured.out)
    return status, captured.err.splitlines()


def assert_one_line_error(status, lines, text):
    assert status == 2
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    assert text in lines[0]


@pytest.mark.parametrize("argv,text", [
    # --samples 0 exited 0 and wrote NaN statistics.
    (["init-study", "--samples", "0"], "argument --samples: must be >= 1, got 0"),
    (["init-study", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    # --abs-fit-networks -1 was taken as 0.
    (["born-dead", "--abs-fit-networks", "-1"], "argument --abs-fit-networks: must be >= 0"),
    (["born-dead", "--widths", "2", "0"], "argument --widths: must be >= 1, got 0"),
    (["born-dead", "--max-depth", "0"], "argument --max-depth: must be >= 1"),
    (["born-dead", "--networks", "two"], "argument --networks: expected an integer, got 'two'"),
    (["lr-sweep", "--lrs", "0.1", "nan"], "argument --lrs: must be a finite number > 0"),
    (["lr-sweep", "--lrs", "1e-46"], "lr=1e-46 becomes 0.0 in float32"),
    (["lr-sweep", "--epochs", "0"], "argument --epochs: must be >= 1"),
    (["lr-sweep", "--jobs", "0"], "argument --jobs: must be >= 1, or negative"),
    (["lr-sweep", "--max-train", "-3"], "argument --max-train: must be >= 1"),
    (["compare-remedies", "--lr", "1e39"], "lr=1e+39 overflows float32"),
    (["compare-remedies", "--lr", "-0.5"], "argument --lr: must be a finite number > 0"),
    (["compare-remedies", "--seeds"], "argument --seeds: expected at least one argument"),
    ([], "the following arguments are required: COMMAND"),
    (["train"], "argument COMMAND: invalid choice: 'train'"),
])
def test_a_bad_option_is_one_line_and_exit_status_2(capsys, argv, text):
    status, lines = run_main(capsys, *argv)
    assert_one_line_error(status, lines, text)
    prog = " ".join(["reluscope", *argv[:1]]) if argv and argv[0] != "train" else "reluscope"
    assert lines[0].startswith(f"{prog}: error: ")


BORN_DEAD_QUICK = ["born-dead", "--widths", "2", "--max-depth", "2", "--networks", "2",
                   "--abs-fit-networks", "0"]


def test_a_folder_as_data_is_one_line(capsys, tmp_path):
    status, lines = run_main(capsys, *BORN_DEAD_QUICK, "--data", str(tmp_path),
                             "--out", str(tmp_path / "out"))
    assert_one_line_error(status, lines, f"--data {tmp_path} is a folder")


def test_missing_data_is_one_line(capsys, tmp_path):
    status, lines = run_main(capsys, *BORN_DEAD_QUICK, "--data", str(tmp_path / "none.csv"),
                             "--out", str(tmp_path / "out"))
    assert_one_line_error(status, lines, "none.csv")


def npy_bytes(array):
    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


def npz_bytes(**arrays):
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


def huge_npy_header():
    """A .npy header for 8e12 float64 values (64 TB), and no data."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        stream, {"descr": "<f8", "fortran_order": False, "shape": (4_000_000_000_000, 2)})
    return stream.getvalue()


@pytest.mark.parametrize("name,write,text", [
    ("empty.csv", lambda p: p.write_text(""), "holds no points"),
    ("words.csv", lambda p: p.write_text("a,b\nc,d\n"), "could not convert"),
    ("strings.npy", lambda p: np.save(p, np.array([["a", "b"]] * 3)), "holds <U1 values"),
    ("times.npy", lambda p: np.save(p, np.ones((3, 2)).astype("m8[s]")), "holds timedelta64"),
    ("complex.npy", lambda p: np.save(p, np.ones((3, 2), dtype=complex)), "complex128"),
    ("pickled.npy", lambda p: np.save(p, np.array([{}] * 3, dtype=object)), "allow_pickle"),
    # A header that claims more memory than there is (numpy raises MemoryError).
    ("huge.npy", lambda p: p.write_bytes(huge_npy_header()), "cannot be read as a .npy file"),
    ("truncated.npy", lambda p: p.write_bytes(npy_bytes(np.ones((50, 2)))[:100]),
     "cannot be read as a .npy file"),
    ("latin1.csv", lambda p: p.write_bytes(b"1,2\n\xe9,3\n"), "cannot be read as a .csv"),
    ("archive.npy", lambda p: p.write_bytes(npz_bytes(a=np.ones((5, 2)))),
     "is an .npz archive, not a .npy array"),
])
def test_unusable_data_is_one_line(capsys, tmp_path, name, write, text):
    path = tmp_path / name
    write(path)
    status, lines = run_main(capsys, *BORN_DEAD_QUICK, "--data", str(path),
                             "--out", str(tmp_path / "out"))
    assert_one_line_error(status, lines, text)


def test_an_output_prefix_below_a_file_is_one_line_before_running(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    status, lines = run_main(capsys, "init-study", "--out", str(tmp_path / "file" / "x"))
    assert_one_line_error(status, lines, "is a file, not a folder")


def test_an_output_prefix_that_is_a_folder_writes_the_commands_files_in_it(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="the experiments' figures need matplotlib")
    folder = tmp_path / "results"
    printed = []
    status, _ = run_main(capsys, *BORN_DEAD_QUICK, "--out", str(folder) + os.sep,
                         stdout=printed)
    assert status == 0
    assert sorted(p.name for p in folder.iterdir()) == ["reluscope-born-dead.json",
                                                        "reluscope-born-dead.png"]
    assert json.loads((folder / "reluscope-born-dead.json").read_text())["experiment"] == \
        "born-dead"
    assert f"wrote {folder / 'reluscope-born-dead'}.json" in printed[0]


def test_an_empty_output_prefix_is_one_line(capsys, tmp_path):
    status, lines = run_main(capsys, *BORN_DEAD_QUICK, "--out", "")
    assert_one_line_error(status, lines, "has no file name")


def run_command(*args, env):
    return subprocess.run([sys.executable, "-m", "reluscope", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_a_bad_simd_target_in_the_environment_is_one_line():
    result = run_command("info", env={"RELUSCOPE_SIMD": "bogus"})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"reluscope: error: RELUSCOPE_SIMD=bogus: unknown SIMD target 'bogus'; "
        f"compiled targets: {result.stderr.split('compiled targets: ')[1].strip()}"]
    assert result.stdout == ""


def test_a_bad_cpu_profile_in_the_environment_is_one_line():
    result = run_command("info", env={"RELUSCOPE_CPU_PROFILE": "zen9", "RELUSCOPE_SIMD": ""})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "reluscope: error: RELUSCOPE_CPU_PROFILE=zen9: unknown CPU profile 'zen9'; "
        "known profiles: generic, zen3, zen4, zen5, intel-avx512, intel-avx512-l2-2m"]
    assert result.stdout == ""


def test_the_installed_command_reports_a_bad_simd_target_in_one_line_too():
    script = os.path.join(os.path.dirname(sys.executable), "reluscope")
    if not os.path.exists(script):
        pytest.skip("the reluscope script is not installed next to this Python")
    result = subprocess.run([script, "info"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "RELUSCOPE_SIMD": "bogus"})
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "RELUSCOPE_SIMD=bogus" in result.stderr


def test_the_library_still_fails_at_import_on_a_bad_simd_target():
    result = subprocess.run([sys.executable, "-c", "import reluscope"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "RELUSCOPE_SIMD": "bogus"})
    assert result.returncode != 0
    assert "ValueError: RELUSCOPE_SIMD=bogus: unknown SIMD target 'bogus'" in result.stderr
