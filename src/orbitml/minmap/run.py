"""The minmap commands as functions: map a scene, evaluate against truth, write a simulated example."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError

__all__ = ["map_file", "evaluate_file", "write_simulation"]


SCENE_CHUNKS = {"band": -1, "y": 64, "x": -1}  # mapping reads the scene by blocks of rows, never whole


def _open(model_path, scene_path, mask_path):
    from orbitml.io import open_scene
    from orbitml.minmap.mapping import check_bands
    from orbitml.minmap.model import model_from_weights
    from orbitml.minmap.train import read_mask

    model, card = model_from_weights(model_path)
    scene = open_scene(scene_path, chunks=SCENE_CHUNKS)
    check_bands(scene, card, scene_path)  # before any work
    mask = read_mask(mask_path, scene)
    return model, card, scene, mask


def map_file(model_path, scene_path, out, *, mask_path=None, threshold: float | None = None, device: str = "cpu",
             progress: bool = False, log=print) -> dict[str, Any]:
    """``orbitml minmap map``: products in ``out`` (see :mod:`orbitml.minmap.outputs`) and run.json."""
    import time

    from orbitml.io.provenance import write_run_info
    from orbitml.minmap.mapping import map_scene
    from orbitml.minmap.outputs import write_products
    from orbitml.nn.training import resolve_device
    from orbitml.nn.weights import simulated_notice

    dev = resolve_device(device)
    model, card, scene, mask = _open(model_path, scene_path, mask_path)
    notice = simulated_notice(card)
    if notice:
        log(f"NOTE: {notice}")
    Path(out).mkdir(parents=True, exist_ok=True)
    store = Path(out) / f".mapping-{uuid.uuid4().hex[:8]}"  # the outputs on disk while the scene is mapped
    store.mkdir()
    try:
        t0 = time.perf_counter()
        res = map_scene(model, card, scene, mask=mask, threshold=threshold, device=dev, progress=progress,
                        path=scene_path, store=store)
        secs = time.perf_counter() - t0
        written = write_products(res, scene, card, out, notice)
        n_rejected, n_pixels = res.n_rejected, res.classes.size
        counts = {name: int(res.counts[i]) for i, name in enumerate(["Unclassified", *card["classes"]])}
        del res  # close the memory maps before their folder goes
    finally:
        shutil.rmtree(store, ignore_errors=True)
    info = {"model": str(model_path), "scene": str(scene_path), "mask": None if mask_path is None else str(mask_path),
            "threshold": card.get("threshold") if threshold is None else threshold, "device": dev,
            "seconds": round(secs, 3), "pixels_per_second": round(n_pixels / max(secs, 1e-9), 1),
            "class_counts": counts,
            "unclassified_outside_libraries": n_rejected,
            "notice": notice, "products": sorted(written)}
    write_run_info(out, "orbitml minmap map", info, seed=card.get("seed"),
                   inputs=[str(model_path), str(scene_path), *([str(mask_path)] if mask_path else [])])
    return info


def _map_one(model_path, scene_path, out, threshold, device) -> dict[str, Any]:
    """One scene of :func:`map_many` (module level, so dask workers can run it); errors come back as data."""
    try:
        return map_file(model_path, scene_path, out, threshold=threshold, device=device, progress=False,
                        log=lambda *a: None)
    except OrbitmlInputError as exc:
        return {"scene": str(scene_path), "error": str(exc)}


def map_many(model_path, scene_paths, out, *, threshold: float | None = None, device: str = "cpu",
             workers: int = 1, scheduler: str | None = None, log=print) -> list[dict[str, Any]]:
    """Map several scenes, each into ``out/<scene stem>/``; on a dask cluster when ``workers > 1`` or a
    ``scheduler`` address is given.  A scene that fails is reported and the others finish; a scene
    whose folder already holds a ``run.json`` is skipped (re-running resumes a batch)."""
    out = Path(out)
    stems = [Path(p).stem for p in scene_paths]
    if len(set(stems)) != len(stems):
        raise OrbitmlInputError("two scenes share a file name; their products would collide", out)
    todo, results = [], []
    for p, stem in zip(scene_paths, stems, strict=True):
        if (out / stem / "run.json").exists():
            log(f"{stem}: already mapped, skipped")
            results.append({"scene": str(p), "skipped": True})
        else:
            todo.append((str(p), str(out / stem)))
    if workers > 1 or scheduler:
        from orbitml.tiling import dask_client

        with dask_client(workers=None if scheduler else workers, scheduler=scheduler) as client:
            futs = [client.submit(_map_one, str(model_path), p, o, threshold, device, pure=False)
                    for p, o in todo]
            done = client.gather(futs)
    else:
        done = [_map_one(str(model_path), p, o, threshold, device) for p, o in todo]
    for (p, _), info in zip(todo, done, strict=True):
        log(f"{Path(p).stem}: " + (f"failed: {info['error']}" if "error" in info else
                                   f"mapped ({info['pixels_per_second']:.0f} px/s)"))
        results.append(info)
    return results


def evaluate_file(model_path, scene_path, truth_paths: list[str], *, mask_path=None, threshold: float | None = None,
                  out: str | os.PathLike | None = None, device: str = "cpu", log=print) -> dict[str, Any]:
    """``orbitml minmap evaluate``: network and FCLS class-mean metrics; JSON + HTML in ``out`` if given."""
    from orbitml.minmap.evaluate import compare, fcls_baseline, read_truth, report_html
    from orbitml.minmap.mapping import map_scene
    from orbitml.nn.training import resolve_device
    from orbitml.nn.weights import simulated_notice

    if not truth_paths:
        raise OrbitmlInputError("give at least one --truth (class raster and/or abundance cube)")
    dev = resolve_device(device)
    model, card, scene, mask = _open(model_path, scene_path, mask_path)
    names = list(card["classes"])
    from orbitml.io.integrity import check_load

    K, n = len(names), scene.sizes["y"] * scene.sizes["x"]
    # the FCLS baseline's float64 pixels, both methods' K-band outputs and the truth, all in memory
    check_load(n * (8 * len(card["bands"]["wavelength_nm"]) + 4 * K * 3 + 16), "minmap evaluate", scene_path,
               "evaluate a window of the scene (cut it, its truth and its mask alike)")
    truth_cls, truth_ab = read_truth(list(truth_paths), scene, names)
    res_map = map_scene(model, card, scene, mask=mask, threshold=threshold, device=dev, path=scene_path)
    f_cls, f_ab = fcls_baseline(model, card, scene, res_map.valid, scene_path)
    res = compare(res_map.classes, res_map.abundances, f_cls, f_ab, truth_cls, truth_ab, res_map.valid, names)
    notice = simulated_notice(card)
    res.update(model=str(model_path), scene=str(scene_path), truth=[str(t) for t in truth_paths],
               classes=names, notice=notice)
    if out is not None:
        from orbitml.io.atomic import atomic_path
        from orbitml.io.provenance import write_run_info

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "evaluation.json") as tmp:
            tmp.write_text(json.dumps(res, indent=2), encoding="utf-8")
        report_html(out / "evaluation.html", res, res_map.classes, f_cls, truth_cls, names, notice,
                    f"minmap evaluation: {Path(scene_path).name}")
        write_run_info(out, "orbitml minmap evaluate", {k: res[k] for k in ("model", "scene", "truth")},
                       seed=card.get("seed"), inputs=[str(model_path), str(scene_path), *map(str, truth_paths)])
    return res


def write_simulation(out, *, shape=(48, 48), classes=None, snr_db: float = 30.0, seed: int = 0,
                     quick: bool = True) -> dict[str, Path]:
    """A simulated scene (ENVI, wavelengths + FWHM), truth rasters, per-class libraries and a manifest."""
    import yaml

    from orbitml.io import write_scene
    from orbitml.io.atomic import atomic_path
    from orbitml.scene import make_scene
    from orbitml.simulate.minmap import simulate_minmap
    from orbitml.spectra import write_library

    out = Path(out)
    (out / "libraries").mkdir(parents=True, exist_ok=True)
    from orbitml.minmap.outputs import write_class_tif
    from orbitml.simulate.minmap import DEFAULT_CLASSES

    # sorted, so the truth values 1..K follow the order of `library_dir` (files sorted by name)
    sim = simulate_minmap(sorted(classes or DEFAULT_CLASSES[:4]), shape=shape, snr_db=snr_db, seed=seed)
    sc = sim.scene
    sc.attrs["product_id"] = f"simulated minmap scene (seed {seed})"
    paths = {"scene": write_scene(sc, out / "scene.img", format="envi", overwrite=True)}
    crs, tr = sc.rio.crs, sc.rio.transform()
    write_class_tif(out / "truth_classes.tif", sim.labels, sc, list(sim.classes), "simulated truth")  # atomic
    paths["truth_classes"] = out / "truth_classes.tif"
    ab = make_scene(sim.abundances, band_names=list(sim.classes), crs=crs, transform=tr, nodata=np.nan)
    paths["truth_abundances"] = write_scene(ab, out / "truth_abundances.img", format="envi", overwrite=True)
    for name, lib in sim.libraries.items():
        write_library(lib, out / "libraries" / f"{name}.csv", overwrite=True)
    man = {"scene": "scene.img", "library_dir": "libraries", "simulated": True, "seed": seed, "out": "model",
           "augment": {"n_per_class": 200 if quick else 400},
           "patches": {"n_train": 1200 if quick else 3000, "n_val": 300 if quick else 600},
           "network": {"patch": 15, "width": 48, "c3": 8, "head": 48} if quick else {},
           "training": {"epochs": 6 if quick else 20, "batch_size": 32, "threads": 2}}
    with atomic_path(out / "manifest.yaml") as tmp:
        head = "# simulated example: orbitml minmap train manifest.yaml\n"
        tmp.write_text(head + yaml.safe_dump(man, sort_keys=False), encoding="utf-8")
    paths["manifest"] = out / "manifest.yaml"
    return paths
