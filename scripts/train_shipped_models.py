"""Re-train the cosmic-ray U-Nets shipped in src/orbitml/cosmic/models/ from their recipes.

    python scripts/train_shipped_models.py [NAME ...] [--check]

Each recipe (``src/orbitml/cosmic/models/recipes/<name>.yaml``) is an ``orbitml cosmic train`` manifest with
its seed and thread count; training is deterministic on CPU, so the same recipe gives the same weights bit
for bit on one machine.  Without ``--check`` the package's ``<name>.safetensors`` + ``<name>.json`` are
(re)written.  With ``--check`` each model is re-trained into a temporary folder and its tensors compared
with the shipped ones (exit status 1 if any differs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    from orbitml.cosmic.shipped import RECIPES_DIR, shipped_models
    from orbitml.cosmic.train import load_manifest, train
    from orbitml.nn.weights import load_weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="recipes to run (default: all)")
    ap.add_argument("--check", action="store_true", help="re-train into a temporary folder and compare")
    args = ap.parse_args()
    recipes = sorted(RECIPES_DIR.glob("*.yaml"))
    if args.names:
        recipes = [RECIPES_DIR / f"{n}.yaml" for n in args.names]
        missing = [r.stem for r in recipes if not r.exists()]
        if missing:
            print(f"no recipe {', '.join(missing)}; recipes: {', '.join(r.stem for r in RECIPES_DIR.glob('*.yaml'))}")
            return 2
    status = 0
    for recipe in recipes:
        man, _ = load_manifest(recipe)
        tmp = None
        if args.check:
            tmp = Path(tempfile.mkdtemp(prefix=f"cosmic_{recipe.stem}_"))
            man.out = str(tmp / Path(man.out).name)
        t = time.perf_counter()
        card = train(man, progress=False)
        dt = time.perf_counter() - t
        if not args.check:  # the package's run.json names the model, not this machine's checkout path
            run = Path(man.out).parent / f"{Path(man.out).name}.run.json"
            info = json.loads(run.read_text(encoding="utf-8"))
            info["params"]["out"] = Path(man.out).name
            run.write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        m = card["metrics"]
        digest = json.loads(Path(man.out).with_suffix(".json").read_text(encoding="utf-8"))["weights_sha256"]
        print(f"{recipe.stem}: trained in {dt:.0f} s; validation detection {m['detection_rate']} threshold "
              f"{m['threshold']:.4g}; sha256 {digest[:16]}")
        if args.check:
            shipped = shipped_models().get(recipe.stem)
            if shipped is None:
                print(f"  no shipped {recipe.stem}.safetensors to compare with")
                status = 1
                continue
            a, _ = load_weights(shipped)
            b, _ = load_weights(Path(man.out).with_suffix(".safetensors"))
            same = a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
            print(f"  tensors identical to the shipped model: {same}")
            status |= 0 if same else 1
    return status


if __name__ == "__main__":
    sys.exit(main())
