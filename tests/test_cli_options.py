"""The command line's options: ``--version``, help with defaults, and ``--force``."""

import json
import re

import pytest

import reluscope as rs
from reluscope import cli

COMMANDS = ["demo", "info", "init-study", "lr-sweep", "born-dead", "compare-remedies"]
# The commands that write files, with the options that name them.
WRITERS = ["demo", "init-study", "lr-sweep", "born-dead", "compare-remedies"]
EXPERIMENT_MODULES = {"init-study": "initialization", "lr-sweep": "learning_rate",
                      "born-dead": "born_dead", "compare-remedies": "remedies"}


def run_main(capsys, *argv):
    """(exit status, stdout, stderr lines) of ``reluscope argv`` run in this process."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:  # argparse exits after --help, --version or a bad option
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err.splitlines()


def test_version_prints_the_package_version(capsys):
    status, out, err = run_main(capsys, "--version")
    assert status == 0 and err == []
    assert out == f"reluscope {rs.__version__}\n"


def help_entries(text: str) -> dict:
    """{option: its help text, whitespace joined} from the "options:" section of --help."""
    section = text.split("options:\n", 1)[1]
    entries, current = {}, None
    for line in section.splitlines():
        match = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if match:
            current = re.findall(r"--[a-z-]+", match.group(1))[-1]
            entries[current] = match.group(2) or ""
        elif current and line.startswith("    "):
            entries[current] += " " + line
    return {option: " ".join(help_.split()) for option, help_ in entries.items()}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_a_help_text_and_a_default(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside a default
    status, out, _ = run_main(capsys, command, "--help")
    assert status == 0
    entries = help_entries(out)
    usage_options = set(re.findall(r"\[(--[a-z-]+)", out.split("options:")[0]))
    assert usage_options <= set(entries), usage_options - set(entries)
    for option, help_ in entries.items():
        if option == "--help":
            continue
        description, _, default = help_.rpartition("default: ")
        assert len(description.strip(" (;")) > 10, (option, help_)
        assert default.strip(" )"), (option, help_)
        assert "None" not in default and "%(" not in help_, (option, help_)
    if command in WRITERS:
        assert "--force" in entries


def test_shown_defaults_are_the_defaults(capsys, monkeypatch, tmp_path):
    """What --help says is what runs: the defaults as the command received them."""
    monkeypatch.chdir(tmp_path)  # the default --out is in the current folder
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside a default
    received = {}
    monkeypatch.setattr("reluscope.experiments.born_dead.run",
                        lambda out, **options: received.update(options, out=out))
    monkeypatch.setattr("reluscope.experiments.born_dead.table", lambda result: "")
    _, out, _ = run_main(capsys, "born-dead", "--help")
    entries = help_entries(out)
    run_main(capsys, "born-dead")
    assert entries["--widths"].endswith("(default: 2 3 4 5 10)")
    assert received["widths"] == [2, 3, 4, 5, 10]
    for option, name in [("--max-depth", "max_depth"), ("--networks", "n_networks"),
                         ("--init", "init"), ("--abs-fit-networks", "abs_fit_networks"),
                         ("--seed", "seed"), ("--out", "out")]:
        assert f"(default: {received[name]})" in entries[option], option


def forbid_work(monkeypatch, command):
    """Make the command's work fail the test, so a refusal is known to come first."""
    def work(*args, **kwargs):
        raise AssertionError(f"{command} ran although its output exists")

    if command == "demo":
        monkeypatch.setattr("reluscope.demo.main", work)
    else:
        monkeypatch.setattr(f"reluscope.experiments.{EXPERIMENT_MODULES[command]}.run", work)


def outputs(command, tmp_path):
    """(the options that name the outputs, the output paths) of ``command`` in tmp_path."""
    if command == "demo":
        return ["--report", str(tmp_path / "report.html")], [tmp_path / "report.html"]
    prefix = tmp_path / command
    return ["--out", str(prefix)], [tmp_path / f"{command}.json", tmp_path / f"{command}.png"]


@pytest.mark.parametrize("command", WRITERS)
def test_an_existing_output_is_refused_before_any_work(capsys, monkeypatch, tmp_path, command):
    forbid_work(monkeypatch, command)
    options, paths = outputs(command, tmp_path)
    paths[-1].write_text("keep me")
    status, out, err = run_main(capsys, command, *options)
    assert status == 2 and out == ""
    assert err == [f"reluscope {command}: error: {paths[-1]} exists; pass --force to overwrite it"]
    assert paths[-1].read_text() == "keep me"
    assert [p for p in paths if p.exists()] == [paths[-1]]  # nothing else written


def test_every_existing_output_is_named(capsys, monkeypatch, tmp_path):
    forbid_work(monkeypatch, "lr-sweep")
    folder = tmp_path / "results"
    folder.mkdir()
    for suffix in (".json", ".png"):
        (folder / f"reluscope-lr-sweep{suffix}").write_text("keep me")
    status, _, err = run_main(capsys, "lr-sweep", "--out", f"{folder}/")
    assert status == 2
    named = f"{folder}/reluscope-lr-sweep.json and {folder}/reluscope-lr-sweep.png"
    assert err == [f"reluscope lr-sweep: error: {named} exist; pass --force to overwrite them"]


@pytest.mark.parametrize("command", ["demo", "init-study", "lr-sweep", "compare-remedies"])
def test_force_lets_the_command_run(capsys, monkeypatch, tmp_path, command):
    received = {}
    if command == "demo":
        monkeypatch.setattr("reluscope.demo.main", lambda report: received.update(out=report))
    else:
        module = f"reluscope.experiments.{EXPERIMENT_MODULES[command]}"
        monkeypatch.setattr(f"{module}.run", lambda out, **options: received.update(out=out))
        monkeypatch.setattr(f"{module}.table", lambda result: "")
    options, paths = outputs(command, tmp_path)
    for path in paths:
        path.write_text("old")
    status, _, err = run_main(capsys, command, *options, "--force")
    assert status == 0 and err == []
    assert received["out"] == options[1]


def test_force_overwrites_the_outputs(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="the experiments' figures need matplotlib")
    prefix = tmp_path / "born"
    for suffix in (".json", ".png"):
        (tmp_path / f"born{suffix}").write_text("old")
    status, _, err = run_main(capsys, "born-dead", "--widths", "2", "--max-depth", "2",
                              "--networks", "2", "--abs-fit-networks", "0",
                              "--out", str(prefix), "--force")
    assert status == 0 and err == []
    assert json.loads((tmp_path / "born.json").read_text())["experiment"] == "born-dead"
    assert (tmp_path / "born.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_folder_in_the_way_is_still_the_writers_error(capsys, tmp_path):
    (tmp_path / "x.json").mkdir()
    status, _, err = run_main(capsys, "init-study", "--out", str(tmp_path / "x"), "--force")
    assert status == 2 and len(err) == 1
    assert "x.json: it is a folder" in err[0]
