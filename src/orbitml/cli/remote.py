"""``orbitml remote ...``: find and fetch data (the only commands that use the network, and only when run).

search (PDS ODE REST) and stac (STAC API) write a search result file; get fetches what a result file
lists into the cache; zenodo lists (and with --get fetches) a Zenodo record; mdis writes the result
file of MESSENGER MDIS EDR frames by product id; pair pairs CRISM with CTX products.
"""

from __future__ import annotations

from pathlib import Path

import typer

from orbitml.cli._common import console, out, print_json

app = typer.Typer(help="Find and fetch data: PDS ODE search, STAC search, Zenodo, PDS archive paths, downloads "
                       "into a cache, CRISM/CTX pairing.", no_args_is_help=True)

_BASE = typer.Option(None, "--base-url", help="ODE REST address (default https://oderest.rsl.wustl.edu/live2/).")
_TIMEOUT = typer.Option(60.0, "--timeout", help="Seconds before a silent server counts as failed.")
_RETRIES = typer.Option(5, "--retries", help="Retries (exponential backoff) on 5xx, 429 and dropped connections.")
_JSON = typer.Option(False, "--json", help="Print JSON on stdout instead of a table.")
_OUT = typer.Option(None, "--out", help="Write the search result file (JSON) that `orbitml remote get` and "
                                        "`orbitml remote pair` read.")


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _parse_bytes(text: str | None) -> int | None:
    if text is None:
        return None
    from orbitml.errors import OrbitmlInputError

    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}.get(t[-1:], 1)
    try:
        return int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise OrbitmlInputError(f"not a size: {text!r} (e.g. 500M, 20G)") from None


def _emit(products, source: str, query: dict, out_path: Path | None, as_json: bool, command: str) -> None:
    from orbitml.io.provenance import write_run_info
    from orbitml.remote.records import save_results

    if out_path is not None:
        save_results(out_path, products, source, query)
        write_run_info(out_path.parent, command, {**query, "out": str(out_path)}, name=out_path.name + ".run.json")
        console.print(f"{len(products)} products -> {out_path}")
    if as_json:
        print_json([p.model_dump(mode="json") for p in products])
        return
    from rich.table import Table

    t = Table(title=f"{len(products)} products ({source})")
    for col in ("product", "time (UTC)", "Ls", "lat", "lon", "files", "size"):
        t.add_column(col)
    for p in products[:200]:
        b = p.bbox
        sizes = [f.expected_bytes for f in p.files if f.expected_bytes is not None]
        total = sum(sizes) if sizes else None
        t.add_row(p.product_id, p.time.strftime("%Y-%m-%d %H:%M:%S") if p.time else "",
                  "" if p.solar_longitude is None else f"{p.solar_longitude:.1f}",
                  "" if not b else f"{(b[1] + b[3]) / 2:.3f}", "" if not b else f"{b[0]:.3f}..{b[2]:.3f}",
                  str(len(p.files)), _size(total) if p.files else "")
    out.print(t)
    if len(products) > 200:
        console.print(f"(first 200 of {len(products)} shown; --out or --json for all)")


@app.command("search")
def search(
    preset: str | None = typer.Option(None, "--preset", help="crism-frt-mtrdr, crism-mtrdr, crism-frt-trdr, "
                                      "crism-trdr, crism-ddr, ctx-edr, hirise-rdr, hirise-edr."),
    ihid: str | None = typer.Option(None, "--ihid", help="Instrument host id (e.g. MRO)."),
    iid: str | None = typer.Option(None, "--iid", help="Instrument id (e.g. CRISM, CTX, HIRISE)."),
    pt: str | None = typer.Option(None, "--pt", help="ODE product type (e.g. MTRDR, TRDR, EDR, RDRV11)."),
    pdsid: str | None = typer.Option(None, "--pdsid", help="PDS product id pattern, * allowed (e.g. FRT*)."),
    target: str = typer.Option("mars", "--target"),
    west: float | None = typer.Option(None, "--west", help="Western edge of the box (degrees)."),
    east: float | None = typer.Option(None, "--east", help="Eastern edge of the box (degrees)."),
    south: float | None = typer.Option(None, "--south", help="Southern edge (planetocentric latitude)."),
    north: float | None = typer.Option(None, "--north", help="Northern edge (planetocentric latitude)."),
    lon_convention: str = typer.Option("east", "--lon-convention",
                                       help="east (positive east; -180..180 or 0..360) or west (positive west)."),
    loc: str = typer.Option("f", "--loc", help="Box test (ODE loc): f footprint intersects, b bounding boxes "
                                               "intersect, o box contains product, i product contains box."),
    start: str | None = typer.Option(None, "--start", help="Earliest observation time (UTC, e.g. 2008-01-01)."),
    end: str | None = typer.Option(None, "--end", help="Latest observation time (UTC)."),
    ls_min: float | None = typer.Option(None, "--ls-min", help="Solar longitude range start (deg; may wrap)."),
    ls_max: float | None = typer.Option(None, "--ls-max", help="Solar longitude range end (deg)."),
    files: bool = typer.Option(True, "--files/--no-files", help="Ask for the product files too (needed by get)."),
    count_only: bool = typer.Option(False, "--count", help="Only print how many products match (results=c)."),
    max_products: int = typer.Option(10000, "--max", help="Refuse queries matching more products than this."),
    page_size: int = typer.Option(100, "--page-size", help="Products per ODE page (offset/limit paging)."),
    out_path: Path | None = _OUT,
    as_json: bool = _JSON,
    base_url: str | None = _BASE,
    timeout: float = _TIMEOUT,
    retries: int = _RETRIES,
) -> None:
    """Search the PDS Geosciences Orbital Data Explorer (ODE REST) and page through all results."""
    from orbitml.errors import OrbitmlInputError
    from orbitml.remote import ode

    box = None
    edges = (west, east, south, north)
    if any(v is not None for v in edges):
        if any(v is None for v in edges):
            raise OrbitmlInputError("a box needs all of --west --east --south --north")
        box = ode.LonLatBox.from_user(west, east, south, north, convention=lon_convention)  # type: ignore[arg-type]
    if (ls_min is None) != (ls_max is None):
        raise OrbitmlInputError("give both --ls-min and --ls-max")
    ls = None if ls_min is None else (ls_min, ls_max)
    query = dict(preset=preset, ihid=ihid, iid=iid, pt=pt, pdsid=pdsid, target=target, box=box, loc=loc,
                 start=start, end=end, ls=ls)
    if count_only:
        n = ode.count(base_url=base_url or ode.DEFAULT_ODE_URL, timeout=timeout, retries=retries, **query)
        if as_json:
            print_json({"count": n})
        else:
            out.print(f"{n} products match")
        return
    with console.status("querying ODE") as st:
        prods = ode.search(base_url=base_url or ode.DEFAULT_ODE_URL, page_size=page_size, max_products=max_products,
                           timeout=timeout, retries=retries, with_files=files,
                           on_page=lambda n, k: st.update(f"querying ODE: page {n}, {k} products"), **query)
    record = {k: v for k, v in query.items() if v is not None and k != "box"}
    if box is not None:
        record["box_east_0_360"] = [box.west, box.east, box.south, box.north]
    _emit(prods, "ode", record, out_path, as_json, "remote search")


@app.command("stac")
def stac(
    url: str | None = typer.Option(None, "--url", help="STAC API root (default USGS Astrogeology, "
                                                       "https://stac.astrogeology.usgs.gov/api/)."),
    collection: list[str] = typer.Option([], "--collection", help="Collection id (repeatable), e.g. "
                                         "mro_hirise_uncontrolled_observations."),
    bbox: str | None = typer.Option(None, "--bbox", help="west,south,east,north in degrees (see --lon-convention)."),
    lon_convention: str = typer.Option("east", "--lon-convention", help="east or west (positive west)."),
    datetime_: str | None = typer.Option(None, "--datetime", help="STAC interval, e.g. 2008-01-01/2010-12-31."),
    query: list[str] = typer.Option([], "--query", help="Property filter (repeatable), e.g. 'gsd<1'."),
    ids: list[str] = typer.Option([], "--id", help="Item id (repeatable)."),
    role: list[str] = typer.Option([], "--role", help="Keep assets with this role (default: data)."),
    asset: list[str] = typer.Option([], "--asset", help="Keep assets with this key (overrides --role)."),
    max_items: int = typer.Option(1000, "--max", help="Stop after this many items."),
    method: str = typer.Option("POST", "--method", help="POST (default) or GET item search."),
    out_path: Path | None = _OUT,
    as_json: bool = _JSON,
    timeout: float = _TIMEOUT,
    retries: int = _RETRIES,
) -> None:
    """STAC API item search (all pages) through pystac-client."""
    from orbitml.errors import OrbitmlInputError
    from orbitml.remote import stac as stac_mod
    from orbitml.remote.ode import LonLatBox

    b = None
    if bbox is not None:
        try:
            w, s, e, n = (float(x) for x in bbox.split(","))
        except ValueError:
            raise OrbitmlInputError(f"--bbox must be west,south,east,north, got {bbox!r}") from None
        b = LonLatBox.from_user(w, e, s, n, convention=lon_convention).to_180()
    with console.status("searching STAC"):
        prods = stac_mod.search(url=url or stac_mod.DEFAULT_STAC_URL, collections=collection or None, bbox=b,
                                datetime=datetime_, query=query or None, ids=ids or None, max_items=max_items,
                                roles=role or ("data",), keys=asset or None, method=method, timeout=timeout,
                                retries=retries)
    record = {"url": url or stac_mod.DEFAULT_STAC_URL, "collections": collection, "bbox": b, "datetime": datetime_,
              "query": query, "roles": role or ["data"], "assets": asset}
    _emit(prods, "stac", record, out_path, as_json, "remote stac")


def _fetch(products, cache: Path | None, dry_run: bool, kinds, names, workers, retries, timeout, max_size, verify,
           as_json) -> None:
    from orbitml.remote import download

    plan = download.plan(products, cache, kinds=kinds or None, names=names or None, verify_cached=verify)
    known, unknown = plan.total_bytes()
    if dry_run:
        rows = [{"url": i.url, "path": str(i.dest), "bytes": i.expected_bytes, "cached": i.cached,
                 "md5": i.md5, "sha256": i.sha256} for i in plan.items]
        if as_json:
            print_json({"cache": str(plan.cache_dir), "files": rows, "to_fetch": len(plan.to_fetch),
                        "to_fetch_bytes": known, "unknown_size": unknown})
            return
        for r in rows:
            out.print(f"{'cached ' if r['cached'] else 'fetch  '} {_size(r['bytes']):>10}  {r['url']}  ->  "
                      f"{r['path']}", markup=False, highlight=False)
        extra = f" (+{unknown} of unknown size)" if unknown else ""
        out.print(f"dry run: {len(plan.to_fetch)} of {len(plan.items)} files to fetch, {_size(known)}{extra}; "
                  f"cache {plan.cache_dir}", markup=False)
        return
    kw = {} if max_size is None else {"max_bytes": _parse_bytes(max_size)}
    results = download.fetch(plan, workers=workers, retries=retries, timeout=timeout, progress=not as_json,
                             products=products, **kw)
    if as_json:
        print_json([{"url": r.item.url, "path": str(r.path) if r.path else None, "status": r.status,
                     "bytes": r.nbytes, "error": r.error} for r in results])
        return
    for r in results:
        out.print(f"{r.status:10s} {r.path}", markup=False, highlight=False)
    console.print(f"{len(results)} files in {plan.cache_dir}")


_CACHE = typer.Option(None, "--cache", help="Cache directory (default $ORBITML_CACHE, else ~/.cache/orbitml).")
_DRY = typer.Option(False, "--dry-run", help="List what would be fetched and its total size; fetch nothing.")
_KIND = typer.Option([], "--kind", help="Keep files of this kind (ODE Type: Product, Browse, Derived, "
                                       "Referenced; STAC asset key or role). Repeatable.")
_NAME = typer.Option([], "--name", help="Keep files whose name matches this regular expression. Repeatable.")
_WORKERS = typer.Option(4, "--workers", help="Parallel downloads.")
_MAXSIZE = typer.Option(None, "--max-size", help="Refuse files larger than this (e.g. 20G; default 64G).")
_VERIFY = typer.Option(False, "--verify", help="Re-check checksums of files already in the cache.")


@app.command("get")
def get(
    results: list[Path] = typer.Argument(None, help="Search result files (from search, stac, zenodo, mdis --out)."),
    pdsid: list[str] = typer.Option([], "--pdsid", help="Also fetch this ODE product id (repeatable)."),
    target: str = typer.Option("mars", "--target", help="Target body of --pdsid products."),
    cache: Path | None = _CACHE,
    dry_run: bool = _DRY,
    kind: list[str] = _KIND,
    name: list[str] = _NAME,
    workers: int = _WORKERS,
    max_size: str | None = _MAXSIZE,
    verify: bool = _VERIFY,
    as_json: bool = _JSON,
    base_url: str | None = _BASE,
    timeout: float = _TIMEOUT,
    retries: int = _RETRIES,
) -> None:
    """Fetch the files of search results (or ODE product ids) into the cache: parallel, resumable, checked.

    Files already in the cache are not fetched again; an interrupted run resumes where it stopped."""
    from orbitml.errors import OrbitmlInputError
    from orbitml.remote import ode
    from orbitml.remote.records import Product, load_results

    products = [p for r in (results or []) for p in load_results(r)]
    bare = [i for i, p in enumerate(products) if p.source == "ode" and not p.files]
    if bare:  # searched with --no-files: the separate product-files query, as the ODE manual advises
        with console.status(f"asking ODE for the files of {len(bare)} products"):
            filled = ode.product_files([products[i] for i in bare], base_url=base_url or ode.DEFAULT_ODE_URL,
                                       timeout=timeout, retries=retries)
        for i, p in zip(bare, filled, strict=True):
            products[i] = p
    if pdsid:
        wanted = [Product(source="ode", product_id=i, target=target) for i in pdsid]
        with console.status("asking ODE for the product files"):
            found = ode.product_files(wanted, base_url=base_url or ode.DEFAULT_ODE_URL, target=target,
                                      timeout=timeout, retries=retries)
        missing = [p.product_id for p in found if not p.files]
        if missing:
            raise OrbitmlInputError(f"ODE lists no files for {', '.join(missing)}")
        products += found
    if not products:
        raise OrbitmlInputError("nothing to fetch: give search result files or --pdsid")
    _fetch(products, cache, dry_run, kind, name, workers, retries, timeout, max_size, verify, as_json)


app.command("fetch", hidden=True, help="Same as get.")(get)


@app.command("zenodo")
def zenodo(
    record: str = typer.Argument(..., help="Record id, Zenodo DOI (10.5281/zenodo.N) or record URL."),
    api: str = typer.Option("https://zenodo.org/api", "--api", help="Zenodo API root."),
    get_files: bool = typer.Option(False, "--get", help="Fetch the record's files into the cache."),
    cache: Path | None = _CACHE,
    dry_run: bool = _DRY,
    name: list[str] = _NAME,
    workers: int = _WORKERS,
    max_size: str | None = _MAXSIZE,
    out_path: Path | None = _OUT,
    as_json: bool = _JSON,
    timeout: float = _TIMEOUT,
    retries: int = _RETRIES,
) -> None:
    """List a Zenodo record's files with sizes and md5 checksums; --get (or --dry-run) fetches them."""
    from orbitml.remote import archives

    with console.status("asking Zenodo"):
        rec = archives.zenodo_record(record, api=api, timeout=timeout, retries=retries)
    if get_files or dry_run:
        if out_path is not None:
            _emit([rec], "zenodo", {"record": record}, out_path, False, "remote zenodo")
        _fetch([rec], cache, dry_run, [], name, workers, retries, timeout, max_size, False, as_json)
        return
    if as_json and out_path is None:
        print_json(rec.model_dump(mode="json"))
        return
    if out_path is not None:
        _emit([rec], "zenodo", {"record": record}, out_path, as_json, "remote zenodo")
    if not as_json:
        out.print(f"Zenodo record {rec.product_id}: {rec.properties.get('title', '')}", markup=False)
        for f in rec.files:
            out.print(f"  {_size(f.size):>10}  md5 {f.md5 or '?'}  {f.name}", markup=False, highlight=False)


@app.command("mdis")
def mdis(
    product_id: list[str] = typer.Argument(..., help="MDIS EDR product ids, e.g. EN0108828322M."),
    date: list[str] = typer.Option(..., "--date", help="Observation date (UTC) of each frame, in order."),
    base: str = typer.Option("https://pds-imaging.jpl.nasa.gov/data/messenger/", "--base",
                             help="PDS Imaging Node MESSENGER archive root."),
    out_path: Path | None = _OUT,
    as_json: bool = _JSON,
) -> None:
    """MESSENGER MDIS EDR frames by product id on the PDS Imaging Node (path rule; no network)."""
    from orbitml.errors import OrbitmlInputError
    from orbitml.remote import archives

    if len(date) != len(product_id):
        raise OrbitmlInputError(f"give one --date per product id ({len(product_id)} ids, {len(date)} dates)")
    prods = [archives.mdis_edr(p, d, base=base) for p, d in zip(product_id, date, strict=True)]
    _emit(prods, "pds", {"mdis_edr": product_id, "dates": date, "base": base}, out_path, as_json, "remote mdis")


@app.command("pair")
def pair(
    crism: Path = typer.Argument(..., help="Search result file of CRISM products."),
    ctx: Path = typer.Argument(..., help="Search result file of CTX products."),
    out_path: Path = typer.Option(Path("pairs.csv"), "--out", help="Pairs table (CSV); a GeoJSON goes beside it."),
    geojson: Path | None = typer.Option(None, "--geojson", help="GeoJSON path (default: --out with .geojson)."),
    min_overlap: float = typer.Option(1.0, "--min-overlap", help="Minimum fraction of the CRISM footprint the CTX "
                                                                 "footprint covers (1 = contains)."),
    max_days: float | None = typer.Option(None, "--max-days", help="Drop pairs further apart in time."),
    max_per: int | None = typer.Option(None, "--max-per", help="Keep this many CTX products per CRISM product."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    as_json: bool = _JSON,
) -> None:
    """For each CRISM product, the CTX products whose footprint contains it, closest in time first."""
    from orbitml.io.atomic import check_writable
    from orbitml.io.provenance import write_run_info
    from orbitml.remote import pairing
    from orbitml.remote.records import load_results

    gj = geojson or out_path.with_suffix(".geojson")
    check_writable(out_path, overwrite)
    check_writable(gj, overwrite)
    cr, cx = load_results(crism), load_results(ctx)
    pairs = pairing.pair(cr, cx, min_overlap=min_overlap, max_days=max_days, max_per_crism=max_per)
    pairing.write_csv(pairs, out_path, overwrite=overwrite)
    pairing.write_geojson(pairs, cr, cx, gj, overwrite=overwrite)
    params = {"crism": str(crism), "ctx": str(ctx), "min_overlap": min_overlap, "max_days": max_days,
              "max_per": max_per, "out": str(out_path), "geojson": str(gj)}
    write_run_info(out_path.parent, "remote pair", params, inputs=[str(crism), str(ctx)],
                   name=out_path.name + ".run.json")
    s = pairing.summary(pairs)
    if as_json:
        from dataclasses import asdict

        print_json({"summary": s, "pairs": [asdict(p) for p in pairs]})
        return
    console.print(f"{s['pairs']} pairs for {s['crism_paired']} of {len(cr)} CRISM products -> {out_path}, {gj}")
