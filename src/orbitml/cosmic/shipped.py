"""The cosmic-ray U-Nets shipped inside the package, and how a model is chosen.

``src/orbitml/cosmic/models/<name>.safetensors`` + ``<name>.json`` (model card), each trained by the recipe
``models/recipes/<name>.yaml`` (an ``orbitml cosmic train`` manifest; ``scripts/train_shipped_models.py``
re-trains them all, bit for bit on CPU with the recipe's seed and thread count).  Every shipped model was
trained on *simulated* hits; its card says so and so does every product it makes.

Choice: ``--model NAME`` (a shipped name) or ``--model PATH``; without ``--model`` the frame's instrument
picks (:data:`BY_INSTRUMENT`, e.g. HiRISE line-scan TDI frames get ``hirise-tdi``), else :data:`DEFAULT`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orbitml.errors import OrbitmlInputError

MODELS_DIR = Path(__file__).resolve().parent / "models"
RECIPES_DIR = MODELS_DIR / "recipes"
DEFAULT = "ccd-general"
BY_INSTRUMENT = {"hirise": "hirise-tdi"}


def shipped_models() -> dict[str, Path]:
    """``{name: weights path}`` of the models in the package."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.safetensors"))}


def recipe_path(name: str) -> Path:
    return RECIPES_DIR / f"{name}.yaml"


def model_for_instrument(instrument: str | None) -> str:
    """The shipped model's name for frames of ``instrument`` (an ``ingest.INSTRUMENTS`` key)."""
    return BY_INSTRUMENT.get(str(instrument or "generic"), DEFAULT)


def resolve_model(spec: str | None, instrument: str | None = None) -> tuple[Path, str]:
    """``(weights path, how it was chosen)`` for ``--model`` ``spec`` (a shipped name or a path) or, when
    ``spec`` is None, the shipped default for ``instrument``."""
    models = shipped_models()
    if spec is None:
        name = model_for_instrument(instrument)
        if name not in models:
            raise OrbitmlInputError(f"the shipped model {name!r} is missing from the installed package "
                                    f"(found: {', '.join(models) or 'none'}); reinstall orbitml", MODELS_DIR)
        why = "the default" if name == DEFAULT else f"the default for {instrument} frames"
        return models[name], f"shipped model {name!r} ({why})"
    if spec in models:
        return models[spec], f"shipped model {spec!r}"
    p = Path(spec)
    if p.suffix in (".safetensors", ".json") or p.exists() or "/" in spec or "\\" in spec:
        return p, f"model {p}"
    raise OrbitmlInputError(f"no model named {spec!r}; shipped models: {', '.join(models) or 'none'} "
                            "(or give the path of a .safetensors file)")


def model_cards() -> list[dict[str, Any]]:
    """The shipped models' cards, each with ``path`` and ``default_for`` added."""
    out = []
    for name, path in shipped_models().items():
        card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        used = [inst for inst, n in BY_INSTRUMENT.items() if n == name]
        card["default_for"] = used or (["every other instrument"] if name == DEFAULT else [])
        card["path"] = str(path)
        out.append(card)
    return out
