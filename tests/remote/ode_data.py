"""Canned ODE REST JSON answers, shaped as the ODE REST manual 2.1.6 describes them (all values strings,
a single product as an object rather than a list, "No Products Found" when empty)."""

from __future__ import annotations

from typing import Any


def ode_product(i: int, *, iid: str = "CRISM", pt: str = "MTRDR", lon: float = 10.0, lat: float = 0.0,
                size: float = 0.1, t: str = "2008-01-14T10:00:00.000", ls: float = 120.0,
                files: bool = True, server: str = "http://127.0.0.1") -> dict[str, Any]:
    pid = f"FRT{i:08X}_07_IF165J_MTR3" if iid == "CRISM" else f"P{i:02d}_001234_1234_XN_00N000W"
    w, e, s, n = lon, lon + size, lat, lat + size
    w180 = w - 360 if w > 180 else w
    e180 = e - 360 if e > 180 else e
    p: dict[str, Any] = {
        "ode_id": str(1000 + i), "pdsid": pid, "ihid": "MRO", "iid": iid, "pt": pt,
        "Data_Set_Id": "MRO-M-CRISM-5-RDR-MPTARGETED-V1.0", "Target_name": "MARS",
        "UTC_start_time": t, "UTC_stop_time": t.replace("10:00:00", "10:02:00"),
        "Observation_time": t.replace("10:00:00", "10:01:00"),
        "Solar_longitude": f"{ls}", "Center_latitude": f"{lat + size / 2}",
        "Westernmost_longitude": f"{w}", "Easternmost_longitude": f"{e}",
        "Minimum_latitude": f"{s}", "Maximum_latitude": f"{n}",
        "Footprint_C0_geometry": f"POLYGON (({w180} {s}, {e180} {s}, {e180} {n}, {w180} {n}, {w180} {s}))",
        "Footprints_cross_meridian": "F",
    }
    if files:
        p["Product_files"] = {"Product_file": [
            {"FileName": pid.lower() + ".img", "Type": "Product", "KBytes": "2.5",
             "URL": f"{server}/data/{pid.lower()}.img", "Description": "PRODUCT DATA FILE"},
            {"FileName": pid.lower() + ".lbl", "Type": "Product", "KBytes": "1",
             "URL": f"{server}/data/{pid.lower()}.lbl", "Description": "PRODUCT LABEL FILE"},
            {"FileName": pid.lower() + "_browse.png", "Type": "Browse", "KBytes": "0.5",
             "URL": f"{server}/data/{pid.lower()}_browse.png", "Description": "BROWSE"},
        ]}
    return p


def ode_answer(products: list[dict[str, Any]]) -> dict[str, Any]:
    if not products:
        prods: Any = "No Products Found"
    elif len(products) == 1:
        prods = {"Product": products[0]}
    else:
        prods = {"Product": products}
    return {"ODEResults": {"Status": "Success", "QuerySummary": {"query": "PRODUCT"}, "Products": prods}}


def ode_error(message: str) -> dict[str, Any]:
    return {"ODEResults": {"Status": "ERROR", "Error": message}}
