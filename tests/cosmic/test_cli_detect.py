import json

import numpy as np
import pytest

from orbitml.cli.main import cli_run
from orbitml.cosmic.products import read_product
from tests.conftest import shared_file
from tests.cosmic.conftest import write_fits


def _sim_fits(tmp_path, name, seed, n_hits=5):
    from orbitml.simulate.ccd import inject_cosmic_rays, simulate_frame

    base, _ = simulate_frame((64, 60), sky_e=200.0, seed=1)
    inj = inject_cosmic_rays(base, n_hits=n_hits, seed=seed)
    overscan = 100.0 + np.random.default_rng(seed).normal(0.0, 2.5, (64, 4))  # bias + read noise in ADU
    write_fits(tmp_path / name, np.hstack([overscan, inj.image / 2.0 + 100.0]).astype(np.float32),
               {"GAIN": 2.0, "RDNOISE": 5.0, "EXPTIME": 30.0, "DATE-OBS": "2020-01-01T00:00:00",
                "BIASSEC": "[1:4,1:64]", "TRIMSEC": "[5:64,1:64]"})
    return inj


def test_detect_lacosmic_product_and_bad_frame_skipped(tmp_path, capsys):
    inj = _sim_fits(tmp_path, "f1.fits", 2)
    (tmp_path / "broken.fits").write_bytes(b"garbage")
    code = cli_run(["cosmic", "detect", str(tmp_path / "f1.fits"), str(tmp_path / "broken.fits"),
                    "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 0 and "broken.fits" in err and "skipped 1" in err
    p = read_product(tmp_path / "out" / "f1.cosmic.fits")
    h = p.header
    assert (h["GAIN"], h["EXPTIME"], h["DETMETH"], h["ORBGAINS"]) == (2.0, 30.0, "lacosmic", "header")
    assert p.sci.shape == (64, 60) and p.prob is None
    # bias (the overscan level) removed and overscan trimmed: SCI = image / gain to within the bias noise
    assert np.abs(p.sci - inj.image / 2.0).max() < 3.0
    # energy of the hits from the product vs the injected charge (faint halo pixels are not flagged)
    e = ((p.sci - p.clean) * h["GAIN"])[p.mask].sum()
    assert 0.7 * inj.charge[p.mask].sum() < e < 1.3 * inj.charge[p.mask].sum()
    assert json.loads((tmp_path / "out" / "detect.run.json").read_text())["params"]["skipped"]
    # existing products are not replaced without --overwrite
    assert cli_run(["cosmic", "detect", str(tmp_path / "f1.fits"), "--out", str(tmp_path / "out")]) == 2


def test_detect_stack_and_unet_default_model(tmp_path, capsys):
    for i in range(3):
        _sim_fits(tmp_path / "", f"s{i}.fits", 10 + i)
    assert cli_run(["cosmic", "detect", str(tmp_path), "--method", "stack", "--out", str(tmp_path / "o")]) == 0
    masks = [read_product(tmp_path / "o" / f"s{i}.cosmic.fits").mask for i in range(3)]
    assert all(m.any() for m in masks) and not np.array_equal(masks[0], masks[1])
    capsys.readouterr()
    # --method unet without --model: the shipped default, named on the console with its simulated notice
    code = cli_run(["cosmic", "detect", str(tmp_path / "s0.fits"), "--method", "unet", "--out", str(tmp_path / "u")])
    err = capsys.readouterr().err
    assert code == 0 and "shipped model 'ccd-general' (the default)" in err and "simulated" in err
    p = read_product(tmp_path / "u" / "s0.cosmic.fits")
    assert p.header["ORBSIMUL"] is True and p.header["MODEL"] == "ccd-general" and p.prob is not None
    assert "simulated" in " ".join(str(c) for c in p.header.get("COMMENT", []))
    run = json.loads((tmp_path / "u" / "detect.run.json").read_text())["params"]
    assert [m["name"] for m in run["models_used"].values()] == ["ccd-general"]
    # a --model name that does not exist: one line listing the shipped names
    code = cli_run(["cosmic", "detect", str(tmp_path / "s0.fits"), "--method", "unet", "--model", "nope",
                    "--out", str(tmp_path / "v")])
    err = capsys.readouterr().err
    assert code == 2 and "no model named 'nope'" in err and "ccd-general" in err and "hirise-tdi" in err


def test_gmos_cli_gain_default_reported(shared_data, tmp_path, capsys):
    code = cli_run(["cosmic", "detect", str(shared_file("ccd/gmos_S20190808S0048_cutout.fits")),
                    "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0 and "no gain keyword" in err and "2 hits" in err


def test_train_manifest_errors(tmp_path, capsys):
    (tmp_path / "m.yaml").write_text("epochs: 0\nbogus: 1\n")
    assert cli_run(["cosmic", "train", str(tmp_path / "m.yaml")]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and "bogus" in err


def test_detect_unet_writes_probabilities(tmp_path):
    import torch

    from orbitml.nn.cosmic_unet import CosmicUNet, save_model

    _sim_fits(tmp_path, "u.fits", 7)
    torch.manual_seed(0)
    save_model(CosmicUNet(base=4), tmp_path / "m", {"threshold": 0.5, "normalisation": {"kind": "snr_asinh"}})
    assert cli_run(["cosmic", "detect", str(tmp_path / "u.fits"), "--method", "unet", "--model",
                    str(tmp_path / "m.safetensors"), "--threshold", "0.4", "--out", str(tmp_path / "o")]) == 0
    p = read_product(tmp_path / "o" / "u.cosmic.fits")
    assert p.header["DETMETH"] == "unet" and p.prob.shape == p.sci.shape
    assert np.array_equal(p.mask, p.prob >= 0.4)
    assert ((p.prob >= 0) & (p.prob <= 1)).all()


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_tiny_frames_refused_not_crashed(tmp_path, capsys, rows):
    from astropy.io import fits

    p = tmp_path / f"tiny{rows}.fits"
    fits.PrimaryHDU(np.random.default_rng(rows).normal(100, 5, (rows, 16)).astype(np.float32)).writeto(p)
    out = tmp_path / "out"
    assert cli_run(["cosmic", "detect", str(p), "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert "needs at least 8 x 8" in cap.out + cap.err
    assert not (out / "detect.run.json").exists()
