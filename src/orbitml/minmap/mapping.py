"""Whole-scene mapping with the fully convolutional network, streamed by blocks of rows.

Each block of ``rows`` output rows reads ``rows + patch - 1`` scene rows (a ``patch // 2`` halo
above and below, reflected at the scene edges like the columns), projects the model's bands to the
``R`` network inputs and runs the network once: the ``(R, rows + 2h, W + 2h)`` input gives the
``(K, rows, W)`` result of every pixel's ``patch x patch`` neighbourhood.  Only one block is in
memory at a time (a dask-backed scene is read block by block).  :func:`per_pixel` is the reference
that extracts one patch per pixel; tests and the benchmark compare the two.

Unclassified (class 0): the top class probability is below the threshold, or the pixel's spectrum lies
outside what the libraries can explain (its spectral angle to the NNLS fit by the class-mean spectra
(plus an offset and a tilt) exceeds the angle calibrated at training on mixtures of augmented library spectra).

Pixels that are invalid (NaN / nodata in a model band, or outside the mask) are given the training
mean (zero after standardisation) as network input and are nodata in every output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.tiling.windows import reflect_index

__all__ = ["MapResult", "block_rows", "check_bands", "map_scene", "per_pixel", "project_block", "CLASS_NODATA"]

CLASS_NODATA = 255


@dataclass
class MapResult:
    classes: np.ndarray  # (H, W) uint8: 0 Unclassified, 1..K, 255 nodata
    confidence: np.ndarray  # (H, W) float32 top class probability, NaN at nodata
    probabilities_top2: np.ndarray  # (H, W) float32 second-highest probability (margin = conf - this)
    abundances: np.ndarray  # (K, H, W) float32, NaN at nodata
    valid: np.ndarray  # (H, W) bool
    rejected: np.ndarray | None = None  # (H, W) bool: outside the libraries (fit angle too large)
    counts: np.ndarray | None = None  # (K + 1,) pixels per class value 0..K (nodata not counted)

    @property
    def n_rejected(self) -> int | None:
        return None if self.rejected is None else int(sum(int(self.rejected[r0:r0 + 4096].sum())
                                                          for r0 in range(0, self.rejected.shape[0], 4096)))


def _alloc(store, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """An output array: in memory, or a memory-mapped ``.npy`` file in ``store`` (a scene larger than memory)."""
    if store is None:
        return np.empty(shape, dtype)
    from pathlib import Path

    return np.lib.format.open_memmap(Path(store) / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)


def check_bands(scene, card: dict, path: Any = None) -> np.ndarray:
    """Indices of the scene bands matching the model's bands; a clear error when the scene differs."""
    from orbitml.scene import wavelengths

    want = np.asarray(card["bands"]["wavelength_nm"], dtype=float)
    wl = wavelengths(scene)
    if wl is None:
        raise OrbitmlInputError(f"the scene has no wavelengths; the model needs {want.size} bands "
                                f"({want.min():.1f}-{want.max():.1f} nm)", path)
    fw = np.asarray(card["bands"].get("fwhm_nm") or np.full(want.size, 10.0), dtype=float)
    j = np.abs(wl[None, :] - want[:, None]).argmin(axis=1)
    dist = np.abs(wl[j] - want)
    tol = np.maximum(0.5, 0.1 * fw)
    bad = dist > tol
    if bad.any() or len(set(j.tolist())) != j.size:
        raise OrbitmlInputError(
            f"the scene's bands ({wl.size} bands, {wl.min():.1f}-{wl.max():.1f} nm) do not match the model's "
            f"{want.size} bands ({want.min():.1f}-{want.max():.1f} nm): {int(bad.sum())} model bands have no scene "
            "band within 10% of their FWHM; train a model for this sensor", path)
    return j


def project_block(model, data: np.ndarray, nodata: float | None, mask: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(B, h, w)`` band block -> ``((R, h, w) float32 inputs, (h, w) valid)``."""
    B, h, w = data.shape
    X = np.moveaxis(data, 0, -1).reshape(-1, B)
    ok = np.isfinite(X).all(axis=1)
    if nodata is not None and np.isfinite(nodata):
        ok &= ~(X == nodata).any(axis=1)
    Z = model.project(np.where(ok[:, None], X, 0.0))
    Z[~ok] = 0.0
    valid = ok.reshape(h, w)
    if mask is not None:
        valid &= mask
    Z = Z.reshape(h, w, -1)
    Z[~valid] = 0.0
    return np.ascontiguousarray(np.moveaxis(Z, -1, 0)), valid


def _net_out(model, z: np.ndarray, device: str):
    import torch

    with torch.inference_mode():
        x = torch.from_numpy(z[None]).to(device)
        logits, ab = model.net(x)
        prob = torch.softmax(logits, dim=1)
    return prob[0].cpu().numpy(), ab[0].cpu().numpy()


def _finish(prob: np.ndarray, ab: np.ndarray, valid: np.ndarray, threshold: float) -> tuple:
    srt = np.sort(prob, axis=0)
    conf, second = srt[-1], srt[-2]
    cls = (prob.argmax(axis=0) + 1).astype(np.uint8)
    cls[conf < threshold] = 0
    cls[~valid] = CLASS_NODATA
    conf = np.where(valid, conf, np.nan).astype(np.float32)
    second = np.where(valid, second, np.nan).astype(np.float32)
    ab = np.where(valid[None], ab, np.nan).astype(np.float32)
    return cls, conf, second, ab


def block_rows(model, width: int, budget_bytes: float = 256e6) -> int:
    """Output rows per pass so that one 3-D activation map stays under ``budget_bytes``."""
    net = model.net
    c3 = net.stem[0].out_channels
    h = net.patch - 1
    per_row = c3 * net.n_dims * (width + h) * 4
    return int(max(8, budget_bytes // per_row - h))


def map_scene(model, card: dict, scene, *, mask: np.ndarray | None = None, threshold: float | None = None,
              rows: int | None = None, device: str = "cpu", progress: bool = False, path: Any = None,
              reject: bool = True, store: Any = None) -> MapResult:
    """Map a scene (see the module docstring); ``rows`` output rows per network pass (default: by memory).

    ``store``: a folder for the outputs as memory-mapped ``.npy`` files, written block by block, so
    that only one block of rows is ever in memory (the default keeps them in memory).

    With ``reject`` and a card holding a ``rejection`` angle, pixels whose spectral angle to their NNLS fit
    by the class-mean library spectra exceeds it (a material the libraries do not hold) are Unclassified
    whatever the network's confidence.
    """
    model = model.to(device).eval()
    idx = check_bands(scene, card, path)
    thr = float(card.get("threshold", 0.5) if threshold is None else threshold)
    H, W = scene.sizes["y"], scene.sizes["x"]
    if mask is not None and mask.shape != (H, W):
        raise OrbitmlInputError(f"mask is {mask.shape} but the scene is {(H, W)}", path)
    h = model.patch // 2
    K = int(card["config"]["n_classes"])
    cols = reflect_index(np.arange(-h, W + h), W)
    data = scene.data
    nodata = scene.rio.nodata
    out_c = _alloc(store, "classes", (H, W), np.uint8)
    out_p = _alloc(store, "confidence", (H, W), np.float32)
    out_s = _alloc(store, "second", (H, W), np.float32)
    out_a = _alloc(store, "abundances", (K, H, W), np.float32)
    valid_all = _alloc(store, "valid", (H, W), bool)
    counts = np.zeros(K + 1, np.int64)
    rej = card.get("rejection") or {}
    max_angle = rej.get("max_angle_deg") if reject else None
    rejected = _alloc(store, "rejected", (H, W), bool) if max_angle is not None else None
    if max_angle is not None:
        from orbitml.minmap.data import fit_angle

        E = model.class_means.cpu().numpy().astype(np.float64)
    rows = block_rows(model, W) if rows is None else max(1, int(rows))
    blocks = list(range(0, H, rows))
    from rich.progress import Progress

    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("mapping", total=len(blocks))
        for r0 in blocks:
            r1 = min(H, r0 + rows)
            need = reflect_index(np.arange(r0 - h, r1 + h), H)
            lo, hi = int(need.min()), int(need.max()) + 1
            raw = np.asarray(data[idx, lo:hi, :], dtype=np.float32)  # one contiguous read per block
            z, valid = project_block(model, raw, nodata, None if mask is None else mask[lo:hi])
            z = z[:, need - lo][:, :, cols]
            prob, ab = _net_out(model, z, device)
            centre = need[h:h + (r1 - r0)] - lo
            vb = valid[centre]
            c, p, s, a = _finish(prob, ab, vb, thr)
            if max_angle is not None:
                own = raw[:, centre]  # the block's own rows
                X = np.moveaxis(own, 0, -1).reshape(-1, own.shape[0])
                v = vb.ravel()
                out = np.zeros(v.size, bool)
                out[v] = fit_angle(X[v], E) > max_angle
                out = out.reshape(vb.shape)
                c[out] = 0
                rejected[r0:r1] = out
            out_c[r0:r1], out_p[r0:r1], out_s[r0:r1], out_a[:, r0:r1] = c, p, s, a
            valid_all[r0:r1] = vb
            counts += np.bincount(c[vb], minlength=K + 1)[:K + 1]
            bar.advance(task)
    for arr in (out_c, out_p, out_s, out_a, valid_all, rejected):
        if isinstance(arr, np.memmap):
            arr.flush()
    return MapResult(out_c, out_p, out_s, out_a, valid_all, rejected, counts)


def per_pixel(model, z_full: np.ndarray, pixels_yx: np.ndarray, batch: int = 64, device: str = "cpu"
              ) -> tuple[np.ndarray, np.ndarray]:
    """Reference: one ``patch x patch`` patch per pixel from the projected scene ``(R, H, W)``.

    Returns ``(probabilities (n, K), abundances (n, K))`` for the ``(n, 2)`` pixel rows/cols.
    """
    import torch

    h = model.patch // 2
    R, H, W = z_full.shape
    pad = z_full[:, reflect_index(np.arange(-h, H + h), H)][:, :, reflect_index(np.arange(-h, W + h), W)]
    probs, abs_ = [], []
    model = model.to(device).eval()
    for s in range(0, len(pixels_yx), batch):
        yx = pixels_yx[s:s + batch]
        patches = np.stack([pad[:, y:y + 2 * h + 1, x:x + 2 * h + 1] for y, x in yx])
        with torch.inference_mode():
            logits, ab = model.net(torch.from_numpy(np.ascontiguousarray(patches)).to(device))
            probs.append(torch.softmax(logits[:, :, 0, 0], 1).cpu().numpy())
            abs_.append(ab[:, :, 0, 0].cpu().numpy())
    return np.concatenate(probs), np.concatenate(abs_)
