import pytest
from pydantic import BaseModel, ConfigDict, Field

from orbitml.errors import OrbitmlInputError
from orbitml.io.manifest import load_manifest, resolve_path, write_manifest


class M(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = Field(3, ge=1)
    name: str = "x"


def test_manifest_ok_and_round_trip(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("n: 5\nname: hello\n")
    m = load_manifest(p, M)
    assert (m.n, m.name) == (5, "hello")
    q = write_manifest(m, tmp_path / "out.yaml", {"orbitml_version": "0"})
    assert load_manifest(q, type("M2", (M,), {"model_config": ConfigDict(extra="ignore")})).n == 5
    assert resolve_path("a/b", tmp_path) == str(tmp_path / "a/b")
    assert resolve_path("/abs", tmp_path) == "/abs"


@pytest.mark.parametrize("text,match", [
    ("n: 5\nbogus: 1\n", "bogus: unknown key"),
    ("n: zero\n", "n: Input should be a valid integer"),
    ("- 1\n- 2\n", "found a list"),
    ("n: [\n", "not valid YAML"),
    ("n: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)), "aliases expand"),
    ("[" * 5000 + "]" * 5000, "nested too deeply|not valid YAML"),
])
def test_manifest_errors(tmp_path, text, match):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(OrbitmlInputError, match=match) as ei:
        load_manifest(p, M)
    assert str(p) in str(ei.value)


def test_manifest_missing(tmp_path):
    with pytest.raises(OrbitmlInputError, match="no such manifest"):
        load_manifest(tmp_path / "nope.yaml", M)


def test_crism_settings_file_goes_through_the_same_limits(tmp_path, capsys):
    from orbitml.cli.main import cli_run

    bomb = tmp_path / "bomb.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for p, c in zip("abcdef", "bcdefg", strict=True):
        lines.append(f"{c}: &{c} [" + ", ".join([f"*{p}"] * 9) + "]")
    bomb.write_text("\n".join(lines) + "\n")
    assert cli_run(["crism", "train", "--simulated", "--config", str(bomb), "--out", str(tmp_path / "m")]) == 2
    assert "aliases expand" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("bogus: 1\n")
    assert cli_run(["crism", "train", "--simulated", "--config", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "bogus: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
