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
