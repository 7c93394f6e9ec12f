"""Model weights as safetensors beside a JSON model card: the one save/load path for every workflow.

``save_weights(module, path, card)`` writes ``<path>.safetensors`` (the card is also embedded in
its metadata) and ``<path>.json`` atomically, world-readable like every other product.
``load_weights(path, architecture=...)`` reads them back without unpickling anything and checks
that the card names the expected architecture.  A card whose ``training_data.simulated`` is true
makes :func:`simulated_notice` return the sentence every product of that model must carry.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from orbitml.errors import OrbitmlInputError

__all__ = ["save_weights", "load_weights", "weights_path", "file_digest", "simulated_notice", "n_parameters"]


def weights_path(path: str | os.PathLike) -> Path:
    """``path`` with the ``.safetensors`` suffix (a folder means ``<folder>/model.safetensors``)."""
    path = Path(path)
    if path.is_dir():
        return path / "model.safetensors"
    return path if path.suffix == ".safetensors" else path.with_suffix(".safetensors")


def n_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_weights(module: Any, path: str | os.PathLike, card: dict[str, Any], overwrite: bool = True) -> Path:
    """Write the module's state dict and ``card``; returns the weights path.

    The card gets ``n_parameters`` and, after writing, ``weights_sha256`` (the digest of the
    safetensors file, so a card can be checked against its weights).
    """
    from safetensors.torch import save_file

    from orbitml.io.atomic import atomic_path

    weights = weights_path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    full = {**card, "n_parameters": n_parameters(module)}
    with atomic_path(weights, overwrite=overwrite) as tmp:
        save_file(state, str(tmp), metadata={"card": json.dumps(full, default=str)})
        os.chmod(tmp, 0o644)
    full["weights_sha256"] = file_digest(weights)
    with atomic_path(weights.with_suffix(".json"), overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(full, indent=2, default=str), encoding="utf-8")
        os.chmod(tmp, 0o644)
    return weights


def load_weights(path: str | os.PathLike, architecture: str | tuple[str, ...] | None = None
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state_dict, card)`` from safetensors (never a pickle); the card beside the weights wins.

    ``architecture``: the card's ``architecture`` must be this (or one of these), else a clear error.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    weights = weights_path(path)
    if not weights.exists():
        raise OrbitmlInputError("no such model (expected a .safetensors file with a .json model card)", weights)
    try:
        with safe_open(str(weights), framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise OrbitmlInputError(f"not a readable safetensors model: {exc}", weights) from None
    card_path = weights.with_suffix(".json")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() \
            else json.loads(meta.get("card", "{}"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OrbitmlInputError(f"model card is not valid JSON: {exc}", card_path) from None
    if not isinstance(card, dict):
        raise OrbitmlInputError("model card must be a JSON object", card_path)
    digest = card.get("weights_sha256")
    if digest is not None and digest != file_digest(weights):
        raise OrbitmlInputError("weights do not match the digest in their model card (changed or corrupt file)",
                                weights)
    if architecture is not None:
        allowed = (architecture,) if isinstance(architecture, str) else tuple(architecture)
        if card.get("architecture") not in allowed:
            raise OrbitmlInputError(
                f"model card says architecture {card.get('architecture')!r}, expected {' or '.join(allowed)}",
                weights)
    return state, card


def load_state_into(module: Any, state: dict[str, Any], path: str | os.PathLike) -> Any:
    """``module.load_state_dict(state)`` with a clear error when the shapes do not match the card."""
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise OrbitmlInputError(f"weights do not match the architecture in the model card: {first}",
                                weights_path(path)) from None
    module.eval()
    return module


def simulated_notice(card: dict[str, Any]) -> str | None:
    """The honesty line for a model trained (partly or wholly) on simulated data, else ``None``."""
    td = card.get("training_data") or {}
    if isinstance(td, dict) and td.get("simulated"):
        what = td.get("simulated_description") or "simulated data"
        return f"model trained on {what}: not validated on real observations"
    return None
