"""Tiled, weighted-blended model application to whole scenes: in process, on dask, over many files.

``fn`` maps a float batch ``(N, C, tile, tile)`` to ``(N, K, tile, tile)``: a numpy function or a
``torch.nn.Module`` (run in eval mode without gradients, moved to ``device``).  For dask with
processes ``fn`` must be picklable: a module-level function, a callable object of an importable
class (e.g. :class:`orbitml.tiling.filters.GaussianSmooth`) or an ``nn.Module`` -- not a lambda
or a closure.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orbitml.errors import OrbitmlInputError
from orbitml.io.atomic import atomic_path, check_writable
from orbitml.tiling.sinks import BLOCK, GeoTiffSink, MemorySink
from orbitml.tiling.sources import open_source
from orbitml.tiling.stitch import Plan, make_plan, make_runner, stream_rows

__all__ = ["predict", "predict_many", "dask_client", "tune_malloc"]


@contextlib.contextmanager
def _progress(enabled: bool, total: int, label: str) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n: prog.advance(task, n)


# Environment of local worker processes: one thread per library (one task per core), and glibc malloc
# thresholds that keep large model buffers on the heap.  dask's default MALLOC_TRIM_THRESHOLD_=65536
# also pins the mmap threshold at 128 KiB, so every tensor allocation becomes an mmap + page faults,
# which made torch forward passes ~1.5-2x slower in the workers than in process (measured here).
WORKER_ENV = {
    "OMP_NUM_THREADS": 1,
    "MKL_NUM_THREADS": 1,
    "OPENBLAS_NUM_THREADS": 1,
    "MALLOC_TRIM_THRESHOLD_": 128 * 2**20,
    "MALLOC_MMAP_THRESHOLD_": 32 * 2**20,
}


_MALLOC_TUNED = False


def tune_malloc() -> bool:
    """Keep freed memory on the heap (glibc only; once per process; ``ORBITML_NO_MALLOC_TUNING=1`` skips it).

    With glibc's defaults the model's activation buffers were unmapped and page-faulted back in at
    every batch once predict's own arrays shared the heap: ~1.8 million page faults and 2-3x slower
    forward passes on a 2048 x 2048 image (measured with benchmarks/bench_tiling_overhead.py).
    Same settings as :data:`WORKER_ENV`: mmap threshold 32 MiB, trim threshold 128 MiB.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get("ORBITML_NO_MALLOC_TUNING") or not sys.platform.startswith("linux"):
        return _MALLOC_TUNED
    _MALLOC_TUNED = True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 * 2**20)
        libc.mallopt(m_trim_threshold, 128 * 2**20)
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        pass
    return True


_LIBC: Any = None


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc ``malloc_trim``; a no-op elsewhere).

    A long loop that keeps a few small objects per step (a list of tiles, their probabilities) between
    large temporaries leaves freed holes that the trim threshold cannot return, because they are not at
    the top of the heap: resident memory then grows with the number of steps, i.e. with the image.
    Called every few dozen steps it keeps memory flat at the cost of a few milliseconds.
    """
    global _LIBC
    if not sys.platform.startswith("linux"):
        return
    try:
        if _LIBC is None:
            import ctypes
            import ctypes.util

            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        _LIBC = False


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A dask.distributed Client: on ``scheduler`` (address) or on a new LocalCluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if scheduler is not None and workers is not None:
        raise OrbitmlInputError("give either workers (a local cluster) or scheduler (an address), not both")
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise OrbitmlInputError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
        with client:
            yield client
        return
    if workers is None or int(workers) < 1:
        raise OrbitmlInputError(f"workers must be a positive number, got {workers}")
    import dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENV}), \
            LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=":0",
                         silence_logs=logging.ERROR) as cl, \
            Client(cl) as client:
        yield client


def _gdal_env(plan: Plan):
    """Bound GDAL's block cache (default: 5% of RAM, which alone can exceed the memory budget on a
    large output): a few rows of 256 px blocks of output, at least 64 MB."""
    import rasterio

    row_bytes = plan.width * BLOCK * 8 * (plan.out_bands or 1)
    return rasterio.Env(GDAL_CACHEMAX=max(64, math.ceil(3 * row_bytes / 2**20)))


def _band_task(source, runner, plan: Plan, a: int, b: int) -> tuple[int, np.ndarray]:
    tune_malloc()  # workers started elsewhere (a remote scheduler) do not have WORKER_ENV
    import warnings

    parts: list[np.ndarray] = []
    with _gdal_env(plan), warnings.catch_warnings():
        from rasterio.errors import NotGeoreferencedWarning

        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # said once by the caller, not per worker task
        stream_rows(source, runner, plan, a, b, lambda r0, blk: parts.append(blk))
    return a, np.concatenate(parts, axis=1)


def _run_dask(client, source, runner, plan: Plan, emit, band_rows: int | None, progress: bool) -> None:
    from distributed import as_completed

    nworkers = max(1, len(client.scheduler_info().get("workers", {})))
    if band_rows is None:
        band_rows = min(8 * BLOCK, max(BLOCK, BLOCK * math.ceil(plan.height / (4 * nworkers * BLOCK))))
    band_rows = max(1, int(band_rows))
    bands = [(a, min(a + band_rows, plan.height)) for a in range(0, plan.height, band_rows)]
    src_f, run_f = client.scatter([source, runner], broadcast=True)
    futures = [client.submit(_band_task, src_f, run_f, plan, a, b, pure=False) for a, b in bands]
    pending: list[tuple[int, int, np.ndarray]] = []
    expected = 0
    with _progress(progress, len(bands), f"tiles {source.name} (dask)") as advance:
        for fut in as_completed(futures):
            a, block = fut.result()
            fut.release()
            heapq.heappush(pending, (a, id(block), block))
            while pending and pending[0][0] == expected:
                a, _, block = heapq.heappop(pending)
                emit(a, block)
                expected = a + block.shape[1]
            advance(1)


def predict(scene_or_path: Any, fn: Any, *, tile: int, stride: int | None = None, overlap: int | None = None,
            weights: Any = "gaussian", margin: int = 0, batch_size: int = 8, out: str | os.PathLike | None = None,
            out_bands: int | Sequence[str] | None = None, out_dtype: Any = "float32",
            out_nodata: float | None = None, fill_value: float = 0.0, in_dtype: Any = None,
            device: str | None = None, overwrite: bool = False, progress: bool = True,
            workers: int | None = None, scheduler: str | None = None, band_rows: int | None = None,
            compress: str | None = "deflate", tags: dict[str, Any] | None = None):
    """Apply ``fn`` tile by tile and blend overlapping outputs by a weighted mean.

    Parameters
    ----------
    scene_or_path : a raster path (read by rasterio windows), a scene (numpy- or dask-backed) or an array.
    fn : numpy ``(N, C, t, t) -> (N, K, t, t)`` function or ``torch.nn.Module``.
    tile, stride, overlap : tile size and step (``stride = tile - overlap``; default: no overlap).
    weights : ``"gaussian"`` (Stepcenkov et al. 2022 Eq. 3), ``"hann"``, ``"uniform"`` or an array.
    margin : pixels at each tile edge whose output is discarded (weight 0), e.g. a filter's half-width;
        needs ``tile - 2*margin >= stride``.
    out : GeoTIFF path (written atomically, tiled, input CRS/transform, nodata, band descriptions) or
        None to return an in-memory scene.
    out_bands : number of output bands, or their names (checked against the model).
    out_nodata : nodata of the output (default NaN for floats, the dtype's max/min for integers).
    fill_value : value given to the model at nodata input pixels (NaN lets the model see them).
    workers / scheduler : run row bands on a dask LocalCluster of ``workers`` processes or on the
        scheduler at that address; results are bit-identical to the in-process path.

    Returns the output path when ``out`` is given, else the output scene.
    """
    if out is not None and Path(out).suffix.lower() not in (".tif", ".tiff"):
        raise OrbitmlInputError("predict writes GeoTIFF: the output name must end in .tif or .tiff", out)
    owned = not hasattr(scene_or_path, "read_reflect")
    source = open_source(scene_or_path)
    names = None
    if out_bands is not None and not isinstance(out_bands, int | np.integer):
        names = [str(n) for n in out_bands]
        out_bands = len(names)
    plan = make_plan(source, tile=tile, stride=stride, overlap=overlap, margin=margin, weights_kind=weights,
                     batch_size=batch_size, fill_value=fill_value, in_dtype=in_dtype, out_dtype=out_dtype,
                     out_nodata=out_nodata, out_bands=out_bands)
    runner = make_runner(fn, device)
    tune_malloc()
    module = getattr(runner, "module", None)
    was_training = getattr(module, "training", None)
    if out is not None:
        check_writable(out, overwrite)

    def run(emit) -> None:
        if workers is None and scheduler is None:
            with _gdal_env(plan), _progress(progress, plan.n_tiles, f"tiles {source.name}") as advance:
                stream_rows(source, runner, plan, 0, plan.height, emit, advance)
        else:
            with dask_client(workers, scheduler) as client:
                _run_dask(client, source, runner, plan, emit, band_rows, progress)

    try:
        if out is None:
            sink = MemorySink(source, plan)
            run(sink.emit)
            return sink.scene(band_names=names, attrs=dict(tags or {}))
        with atomic_path(out, overwrite=overwrite) as tmp, _gdal_env(plan):
            gsink = GeoTiffSink(tmp, source, plan, band_names=names, compress=compress, tags=tags)
            try:
                run(gsink.emit)
            finally:
                gsink.close()
        return Path(out)
    finally:
        if module is not None and was_training:
            module.train(True)
        if owned:
            source.close()


def _stale_temporaries(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.stem}.*.tmp{out.suffix}"))


def predict_many(paths: Sequence[str | os.PathLike], fn: Any, out_dir: str | os.PathLike, *, tile: int,
                 suffix: str = "_pred.tif", workers: int | None = None, scheduler: str | None = None,
                 overwrite: bool = False, progress: bool = True, raise_on_error: bool = True,
                 **kwargs: Any) -> list[dict[str, Any]]:
    """Run :func:`predict` on many files, one file per task; resumable.

    Output ``out_dir/<stem><suffix>``.  A file whose output already exists is skipped (outputs
    appear only by the final atomic rename, so an existing one is complete); temporaries left by an
    interrupted run are removed first.  With ``workers``/``scheduler`` files are spread over dask
    workers (each runs ``predict`` in process).  Returns one record per file: input, output,
    status (``done``, ``skipped`` or ``failed``) and error.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, records = [], []
    outs = [out_dir / f"{Path(p).stem}{suffix}" for p in paths]
    if len(set(outs)) != len(outs):
        raise OrbitmlInputError("two inputs share a file name stem; their outputs would collide", out_dir)
    for p, o in zip(paths, outs, strict=True):
        for stale in _stale_temporaries(o):
            with contextlib.suppress(OSError):
                stale.unlink()
        rec = {"input": str(p), "output": str(o), "status": "skipped", "error": ""}
        records.append(rec)
        if o.exists() and not overwrite:
            continue
        jobs.append(rec)
    kw = dict(kwargs, tile=tile, overwrite=overwrite, progress=False)

    def settle(rec, exc: BaseException | None) -> None:
        if exc is None:
            rec["status"] = "done"
        else:
            if not isinstance(exc, OrbitmlInputError):
                raise exc
            rec["status"], rec["error"] = "failed", str(exc)

    with _progress(progress, len(jobs), f"files ({len(records) - len(jobs)} already done)") as advance:
        if workers is None and scheduler is None:
            for rec in jobs:
                try:
                    _predict_file(rec["input"], fn, rec["output"], kw)
                    settle(rec, None)
                except OrbitmlInputError as exc:
                    settle(rec, exc)
                advance(1)
        else:
            from distributed import as_completed

            with dask_client(workers, scheduler) as client:
                futs = {client.submit(_predict_file, rec["input"], fn, rec["output"], kw, pure=False): rec
                        for rec in jobs}
                for fut in as_completed(futs):
                    settle(futs[fut], fut.exception())
                    advance(1)
    failed = [r for r in records if r["status"] == "failed"]
    if failed and raise_on_error:
        raise OrbitmlInputError(f"{len(failed)} of {len(records)} files failed; first: {failed[0]['error']}")
    return records


def _predict_file(path: str, fn: Any, out: str, kw: dict[str, Any]) -> str:
    predict(path, fn, out=out, **kw)
    return out
