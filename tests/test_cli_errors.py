"""One error path for the whole CLI: parse mistakes give one line on stderr and exit 2; help is readable."""

import pytest

from orbitml.cli.main import _command, cli_run


def _all_commands():
    out = []

    def walk(cmd, path):
        subs = getattr(cmd, "commands", None) or {}
        if not subs:
            out.append(path)
        for name, sub in subs.items():
            walk(sub, [*path, name])

    walk(_command(), [])
    return out


COMMANDS = _all_commands()


def test_every_workflow_is_registered():
    tops = {c[0] for c in COMMANDS}
    assert {"info", "convert", "demo", "library", "unmix", "tiles", "crism", "cosmic"} <= tops


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_of_every_command(path, capsys):
    assert cli_run([*path, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"Usage: orbitml {' '.join(path)}")
    for bad in ("<bool>", "<list[", "{", "...\n  ", "Traceback"):
        assert bad not in text, f"{bad!r} in help of {path}"
    longest = max(len(line) for line in text.splitlines())
    assert longest <= 160


@pytest.mark.parametrize("argv", [
    ["foo"],
    ["info"],
    ["info", "--bogus", "1", "x"],
    ["tiles", "chunk", "x.tif", "--size", "0"],
    ["cosmic", "detect", "x.fits", "--method", "bad"],
    ["demo", "--seed", "x"],
    ["crism", "nosuchverb"],
])
def test_parse_mistakes_one_line_exit_2(argv, capsys):
    assert cli_run(argv) == 2
    cap = capsys.readouterr()
    lines = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("orbitml: error: ")
    assert "--help" in lines[0]
    assert "Traceback" not in cap.err + cap.out


@pytest.mark.parametrize("argv", [[], ["crism"], ["cosmic"]])
def test_no_arguments_shows_help(argv, capsys):
    assert cli_run(argv) == 0
    assert capsys.readouterr().out.startswith("Usage: orbitml")


def test_user_error_from_a_command_is_one_line(tmp_path, capsys):
    assert cli_run(["info", str(tmp_path / "missing.img")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.img" in err[0]


def test_json_everywhere_is_parseable(tmp_path, capsys):
    import json

    import numpy as np

    from orbitml.io import write_scene
    from orbitml.scene import make_scene

    img = write_scene(make_scene(np.random.default_rng(0).random((3, 40, 50)).astype(np.float32),
                                 wavelength=[1000.0, 1500.0, 2000.0]), tmp_path / "a.tif")
    assert cli_run(["info", str(img), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert isinstance(one, list) and len(one) == 1 and one[0]["bands"] == 3
    assert cli_run(["tiles", "chunk", str(img), "--size", "16", "--out", str(tmp_path / "t.csv"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["tiles"] == 12 and d["kept"] == 12
    assert cli_run(["unmix", "endmembers", str(img), "--p", "2", "--out", str(tmp_path / "em"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["endmembers"] == 2


def test_ctrl_c_is_one_line_exit_130(tmp_path, capsys, monkeypatch):
    import orbitml.report.demo as demo

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "run_demo", interrupted)
    assert cli_run(["demo", "--quick", "--out", str(tmp_path / "d")]) == 130
    assert capsys.readouterr().err.strip() == "orbitml: interrupted"
