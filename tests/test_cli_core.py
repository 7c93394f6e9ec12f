"""`orbitml info`, `orbitml convert`, `--version` end to end, and the user-error contract (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from orbitml import __version__
from orbitml.cli.main import cli_run
from orbitml.io import open_scene
from tests.conftest import shared_file


def test_version(capsys):
    assert cli_run(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_info_json_real_mtrdr(capsys):
    tif = shared_file("crism/frt0000932c_07_if164j_mtr3_subsampled.tif")
    csv = shared_file("crism/frt0000932c_mtr3_wavelengths_nm.csv")
    assert cli_run(["info", str(tif), "--json", "--wavelengths", str(csv)]) == 0
    (info,) = json.loads(capsys.readouterr().out)
    assert info["bands"] == 489 and info["height"] == 20 and info["width"] == 20
    assert info["wavelength_nm"] == [436.13, 3896.76]
    assert "Mars" in info["crs"] and info["nodata"] == 65535.0


def test_info_bad_label_exit_2_one_line(capsys):
    lbl = shared_file("mars/crism/T0897_MRRAL_05S113_0256_1_cropped.LBL")
    assert cli_run(["info", str(lbl)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inconsistent" in err[0] and "T0897" in err[0]


def test_convert_to_envi_and_back(tmp_path, capsys):
    src = shared_file("mars/hirise/PSP_009404_2635_RED_NLstretch_1m_o_forPDS_cropped.cub")
    out = tmp_path / "polar.img"
    assert cli_run(["convert", str(src), str(out)]) == 0
    a, b = open_scene(src), open_scene(out)
    np.testing.assert_array_equal(a.values, b.values)
    assert b.rio.crs is not None and a.rio.transform().almost_equals(b.rio.transform())
    assert cli_run(["convert", str(src), str(out)]) == 2  # exists, no --overwrite
    assert "exists" in capsys.readouterr().err


def test_missing_file_no_traceback():
    r = subprocess.run([sys.executable, "-m", "orbitml.cli.main", "info", "/nonexistent/x.img"],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "no such file" in r.stderr
