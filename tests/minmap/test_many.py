"""Several scenes in one `minmap map` call: in process and on a dask cluster, a bad scene skipped, resumable."""

from __future__ import annotations

import json
import shutil

import numpy as np
import rasterio

from orbitml.cli.main import cli_run
from tests.minmap.conftest import tiny_manifest


def test_map_many_scenes_local_and_dask(sim_dir, tmp_path, capsys):
    work = tmp_path / "w"
    shutil.copytree(sim_dir, work)
    man = tiny_manifest(work)
    assert cli_run(["minmap", "train", str(man), "--no-progress"]) == 0
    model = work / "model"
    for suffix in (".img", ".hdr"):
        shutil.copy(work / f"scene{suffix}", work / f"other{suffix}")
    (work / "broken.img").write_text("not an image")
    single = tmp_path / "single"
    assert cli_run(["minmap", "map", "--model", str(model), "--scene", str(work / "scene.img"), "--out",
                    str(single), "--no-progress"]) == 0
    with rasterio.open(single / "class_map.tif") as ds:
        ref = ds.read(1)
    capsys.readouterr()
    scenes = [str(work / "scene.img"), str(work / "other.img"), str(work / "broken.img")]
    for workers, out in (("1", tmp_path / "many"), ("2", tmp_path / "dask")):
        assert cli_run(["minmap", "map", "--model", str(model), *sum((["--scene", s] for s in scenes), []),
                        "--out", str(out), "--workers", workers, "--no-progress"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert [("error" in r) for r in res] == [False, False, True]
        for stem in ("scene", "other"):
            with rasterio.open(out / stem / "class_map.tif") as ds:
                np.testing.assert_array_equal(ds.read(1), ref)
        assert not (out / "broken").exists() or not (out / "broken" / "run.json").exists()
    # a second run resumes: the mapped scenes are skipped
    assert cli_run(["minmap", "map", "--model", str(model), "--scene", scenes[0], "--scene", scenes[1],
                    "--out", str(tmp_path / "many"), "--no-progress"]) == 0
    assert all(r.get("skipped") for r in json.loads(capsys.readouterr().out))
