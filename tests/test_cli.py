"""The command line: ``reluscope info`` and ``reluscope demo``."""

import json
import subprocess
import sys

import numpy as np
import pytest

import reluscope as rs


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reluscope", *args], capture_output=True,
                          text=True, timeout=300, check=False)


def test_info_prints_build_info():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["version"] == rs.__version__
    assert info["selected_target"] in info["compiled_targets"]


def test_demo_trains_twice_and_reports_dead_units():
    pytest.importorskip("sklearn", reason="the demo's digits data comes with scikit-learn")
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("test accuracy:") == 2
    assert "sensible learning rate" in out and "large learning rate" in out
    assert out.count("at init:") == 2 and out.count("after training:") == 2
    sensible, large = out.split("== large learning rate")
    accuracy = float(sensible.split("test accuracy: ")[1].split("%")[0])
    assert accuracy > 90.0
    # The large rate kills most of the first hidden layer.
    after = large.split("after training:")[1].split()[0]
    dead, total = map(int, after.split("/"))
    assert dead > total // 2


def test_no_command_is_a_usage_error():
    result = run_cli()
    assert result.returncode == 2
    assert "usage: reluscope" in result.stderr


def test_a_reader_that_goes_away_is_not_an_error():
    pytest.importorskip("sklearn", reason="the demo's digits data comes with scikit-learn")
    process = subprocess.Popen([sys.executable, "-u", "-m", "reluscope", "demo"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.readline()
    process.stdout.close()  # like `reluscope demo | head -1`; -u: the rest is written after
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0
    assert b"Traceback" not in stderr


def test_demo_writes_an_html_report(tmp_path):
    pytest.importorskip("sklearn", reason="the demo's digits data comes with scikit-learn")
    pytest.importorskip("matplotlib", reason="the plot extra (installed by the test extra)")
    path = tmp_path / "demo.html"
    result = run_cli("demo", "--report", str(path))
    assert result.returncode == 0, result.stderr
    page = path.read_text()
    # A verdict per run, then the runs side by side: four plots and folded certificates each.
    assert page.count('<div class="verdict-run">') == 2
    assert page.count('src="data:image/png;base64,') == 8
    assert page.count('<details class="certificates">') == 2
    assert "Large learning rate" in page and "Sensible learning rate" in page


@pytest.mark.parametrize("command,args,expect", [
    ("born-dead", ["--widths", "2", "3", "--max-depth", "10", "--networks", "40",
                   "--abs-fit-networks", "3"], "networks trained on |x| ended constant"),
    ("init-study", ["--samples", "60", "--dataset", "digits"], "std holds"),
    ("lr-sweep", ["--lrs", "0.01", "0.3", "--seeds", "0", "--epochs", "1", "--dataset",
                  "digits", "--jobs", "1"], "Best mean test accuracy"),
    ("compare-remedies", ["--seeds", "0", "--epochs", "1", "--dataset", "digits", "--jobs", "1"],
     "clip grad norm"),
])
def test_experiment_subcommands_write_json_and_png(tmp_path, command, args, expect):
    out = tmp_path / command
    result = run_cli(command, "--out", str(out), *args)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout
    data = json.loads((tmp_path / f"{command}.json").read_text())
    assert data["schema_version"] == 1 and data["experiment"] == command
    assert "seed" in json.dumps(data["parameters"])
    png = (tmp_path / f"{command}.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000


def test_born_dead_takes_the_users_data(tmp_path):
    data = tmp_path / "points.csv"
    np.savetxt(data, np.random.default_rng(0).standard_normal((30, 2)), delimiter=",")
    result = run_cli("born-dead", "--data", str(data), "--widths", "3", "--max-depth", "4",
                     "--networks", "20", "--out", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    parameters = json.loads((tmp_path / "mine.json").read_text())["parameters"]
    assert parameters["data"] == "user data, 30 points x 2 features"


def test_experiment_subcommand_reports_bad_input():
    result = run_cli("born-dead", "--widths", "0", "--out", "unused")
    assert result.returncode == 2
    assert "argument --widths: must be >= 1, got 0" in result.stderr
    assert len(result.stderr.splitlines()) == 1
