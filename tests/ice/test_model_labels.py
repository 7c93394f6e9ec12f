import numpy as np
import pytest
import torch
from PIL import Image

from orbitml.errors import OrbitmlInputError
from orbitml.ice.labels import read_labels, split_by_image
from orbitml.nn.ice_xception import PAPER_WIDTHS, build_model, describe_model


def _expected_params(cin, stem, blocks, head):
    n = cin * stem * 9 + 2 * stem  # stem conv (no bias) + BN
    c = stem
    for w in blocks:
        n += c * 9 + c * w + 2 * w + w * 9 + w * w + 2 * w + c * w + w  # two sep convs + BNs + 1x1 residual (bias)
        c = w
    return n + c * 9 + c * head + 2 * head + head + 1  # head sep conv + BN + dense


def test_paper_xception_parameter_count_and_output():
    net = build_model("ice_xception")
    assert describe_model(net)["n_parameters"] == _expected_params(1, PAPER_WIDTHS["stem"], PAPER_WIDTHS["blocks"],
                                                                   PAPER_WIDTHS["head"])
    small = build_model("ice_xception", stem=8, blocks=(16, 32), head=32).eval()
    out = small(torch.randn(3, 1, 64, 64))
    assert out.shape == (3, 1)
    drop = [m for m in small.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drop) == 1 and drop[0].p == 0.5


def test_any_timm_model_by_name_and_a_clear_error_for_an_unknown_one():
    net = build_model("resnet10t")
    assert net(torch.randn(2, 1, 64, 64)).shape == (2, 1)
    with pytest.raises(OrbitmlInputError, match="cannot build model"):
        build_model("no_such_network_xyz")


def _write_chunks(folder, cls, names, size=32):
    d = folder / cls
    d.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.full((size, size), 100, np.uint8)).save(d / f"{n}.png")


def test_label_folder_with_one_class_is_refused(tmp_path):
    _write_chunks(tmp_path / "lab", "ice", ["A_r0_c0", "A_r0_c32"])
    (tmp_path / "lab" / "no_ice").mkdir()
    with pytest.raises(OrbitmlInputError, match="one class only"):
        read_labels(tmp_path / "lab", 32)


def test_label_folder_and_split_by_source_image(tmp_path):
    for im in "ABCDE":
        _write_chunks(tmp_path / "lab", "ice", [f"{im}_r0_c0"])
        _write_chunks(tmp_path / "lab", "no_ice", [f"{im}_r32_c0", f"{im}_r64_c0", f"{im}_r0_c64"])
    chunks = read_labels(tmp_path / "lab", 32)
    assert len(chunks) == 20 and {c.image for c in chunks} == set("ABCDE")
    assert {(c.row, c.col) for c in chunks if c.image == "A"} == {(0, 0), (32, 0), (64, 0), (0, 64)}
    train, val, ti, vi = split_by_image(chunks, 0.2, seed=1)
    assert vi and not set(ti) & set(vi)
    assert {c.image for c in val} == set(vi) and {c.image for c in train} == set(ti)
    assert {c.label for c in val} == {0, 1}
    with pytest.raises(OrbitmlInputError, match="chunk size"):
        from orbitml.ice.labels import read_chunk_pixels

        read_chunk_pixels(read_labels(tmp_path / "lab", 64)[0])


def test_label_csv_errors(tmp_path):
    p = tmp_path / "l.csv"
    p.write_text("image,row,col,label\na.tif,0,0,ice\na.tif,0,32,maybe\n")
    with pytest.raises(OrbitmlInputError, match="unknown label 'maybe'"):
        read_labels(p, 32)
    p.write_text("image,row,col,label,size\na.tif,0,0,1,64\n")
    with pytest.raises(OrbitmlInputError, match="64 px but the chunk size is 32"):
        read_labels(p, 32)
    p.write_text("image,row,col,label\na.tif,0,0,1\nb.tif,0,0,1\n")
    with pytest.raises(OrbitmlInputError, match="one class"):
        read_labels(p, 32)
