"""8-bit browse images (PNG/JPEG) and scoring against Pascal VOC boxes."""

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from orbitml.cli.main import cli_run
from orbitml.cosmic.evaluate import box_iou, box_scores, mask_boxes, read_voc
from orbitml.cosmic.ingest import BROWSE_GAIN, read_frame
from orbitml.cosmic.products import write_product_arrays
from orbitml.errors import OrbitmlInputError


def _png(path, arr, mode="L"):
    from PIL import Image

    Image.fromarray(arr.astype(np.uint8), mode=mode if mode != "L" else None).save(path)
    return path


def _voc(path, filename, boxes, size=(64, 48)):
    objs = "".join(f"<object><name>cr</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                   f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    path.write_text(f"<annotation><filename>{filename}</filename><size><width>{size[0]}</width>"
                    f"<height>{size[1]}</height><depth>1</depth></size>{objs}</annotation>")
    return path


def test_browse_png_nominal_gain_measured_noise_and_notes(tmp_path):
    rng = np.random.default_rng(0)
    arr = np.clip(rng.normal(60.0, 4.0, (48, 64)), 0, 255)
    arr[20, 30] = 250
    fr = read_frame(_png(tmp_path / "b.png", arr))
    assert fr.gain == BROWSE_GAIN and fr.sources["gain"] == "nominal" and fr.sources["read_noise"] == "measured"
    assert abs(fr.read_noise - 4.0) < 0.6  # the pixel noise measured on the image
    assert fr.saturation_adu == 255.0 and fr.bad[20, 30] == np.False_
    text = " ".join(fr.notes)
    assert "not physical" in text and "nominal" in text
    rgb = np.stack([arr, arr, arr], axis=2)
    fr2 = read_frame(_png(tmp_path / "c.png", rgb, mode="RGB"), gain=3.0)
    assert fr2.gain == 3.0 and np.allclose(fr2.data, fr.data) and "colour" in " ".join(fr2.notes)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(OrbitmlInputError, match="PNG/JPEG"):
        read_frame(tmp_path / "bad.png")


def test_box_geometry_known_answers():
    assert box_iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert box_iou((0, 0, 1, 1), (1, 0, 2, 1)) == pytest.approx(2 / 6)
    assert box_iou((0, 0, 1, 1), (3, 3, 4, 4)) == 0.0
    m = np.zeros((10, 10), bool)
    m[2, 2:5] = True
    m[2, 6:8] = True  # a one-pixel gap: the same hit
    m[8, 8] = True
    assert sorted(mask_boxes(m)) == [(2, 2, 7, 2), (8, 8, 8, 8)]
    truth = [(2, 2, 7, 2), (0, 8, 1, 9)]
    s = box_scores(truth, mask_boxes(m), iou=0.3)
    assert (s["n_matched"], s["recall"], s["precision"]) == (1, 0.5, 0.5)


def test_voc_reader_and_cli_evaluate_per_frame_and_total(tmp_path, capsys):
    mask = np.zeros((48, 64), bool)
    mask[10:12, 10:13] = True  # matches annotation 1
    mask[30, 40:46] = True  # matches annotation 2
    mask[5, 60] = True  # a false detection
    sci = np.ones((48, 64), np.float32)
    write_product_arrays(tmp_path / "p" / "frameA.cosmic.fits", sci, sci, mask, {"GAIN": 1.0})
    write_product_arrays(tmp_path / "p" / "frameB.cosmic.fits", sci, sci, np.zeros_like(mask), {"GAIN": 1.0})
    ann = tmp_path / "ann"
    ann.mkdir()
    _voc(ann / "a.xml", "frameA.png", [(11, 11, 13, 12), (41, 31, 46, 31), (2, 40, 4, 42)])  # 1-based
    _voc(ann / "b.xml", "frameB.jpg", [(20, 20, 22, 22)])
    voc = read_voc(ann / "a.xml")
    assert voc["boxes"][0][:4] == (10, 10, 12, 11) and (voc["width"], voc["height"]) == (64, 48)
    code = cli_run(["cosmic", "evaluate", str(tmp_path / "p"), "--boxes", str(ann), "--out",
                    str(tmp_path / "ev.csv"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    rows = {r["frame"]: r for r in out["rows"]}
    assert (rows["frameA"]["n_matched"], rows["frameA"]["recall"], rows["frameA"]["precision"]) == (2, 2 / 3, 2 / 3)
    assert (rows["frameB"]["n_annotated"], rows["frameB"]["recall"]) == (1, 0.0)
    assert out["total"]["recall"] == 0.5 and out["total"]["precision"] == pytest.approx(2 / 3)
    assert "IoU >= 0.3" in out["total"]["rule"]
    lines = (tmp_path / "ev.csv").read_text().splitlines()
    assert lines[0].startswith("frame,annotation") and lines[-1].startswith("TOTAL")
    (ann / "c.xml").write_text("<annotation><object><bndbox><xmin>a</xmin></bndbox></object></annotation>")
    code = cli_run(["cosmic", "evaluate", str(tmp_path / "p"), "--boxes", str(ann / "c.xml")])
    assert code == 2 and "c.xml" in capsys.readouterr().err


def test_browse_image_end_to_end_detect(tmp_path, capsys):
    from orbitml.simulate.ccd import inject_cosmic_rays

    rng = np.random.default_rng(1)
    base = rng.normal(50.0, 3.0, (64, 64))
    inj = inject_cosmic_rays(base, n_hits=4, seed=5)
    charge = 0.05 * inj.charge  # display DN: hits bright but below the 255 ceiling
    truth = charge >= 15.0
    _png(tmp_path / "browse.png", np.clip(np.round(base + charge), 0, 255))
    code = cli_run(["cosmic", "detect", str(tmp_path / "browse.png"), "--method", "unet", "--out",
                    str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0 and "nominal" in err and "not physical" in err
    from orbitml.cosmic.products import read_product

    p = read_product(tmp_path / "o" / "browse.cosmic.fits")
    assert p.header["ORBGAINS"] == "nominal" and p.header["GAIN"] == BROWSE_GAIN
    assert truth.sum() > 5 and (p.mask & truth).sum() > 0.5 * truth.sum()
    assert (p.mask & ~ndi.binary_dilation(truth, iterations=2)).sum() < 5
