"""The image-level rules: corroboration on constructed chunk grids, confirmation looks, edge-only evidence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from orbitml.errors import OrbitmlInputError
from orbitml.ice.scan import Look, confirmation_windows, evidence_peak, evidence_unseen, image_verdict

S = 64  # chunk size; a half-overlap grid steps by 32


@dataclass
class T:
    row: int
    col: int
    index: int = 0


def grid(h=256, w=256, step=32):
    return [T(r, c, k) for k, (r, c) in enumerate((r, c) for r in range(0, h - S + 1, step)
                                                  for c in range(0, w - S + 1, step))]


def probs_for(tiles, strong: dict[tuple[int, int], float], base=0.05):
    return np.array([strong.get((t.row, t.col), base) for t in tiles])


def test_a_single_isolated_strong_chunk_is_not_flagged_but_the_papers_rule_flags_it():
    tiles = grid()
    p = probs_for(tiles, {(96, 96): 0.99})
    v = image_verdict(tiles, p, S, 32, rule="corroborated")
    assert (v["flagged"], v["n_positive"], v["n_corroborated"], v["paper_class"]) == (False, 1, 0, "one")
    assert v["unconfirmed"] == [next(i for i, t in enumerate(tiles) if (t.row, t.col) == (96, 96))]
    assert image_verdict(tiles, p, S, 32, rule="paper")["flagged"] is True
    # auto follows the grid: corroborated with overlap, the paper's rule without
    assert image_verdict(tiles, p, S, 32)["rule"] == "corroborated"
    assert image_verdict(tiles, p, S, 0)["rule"] == "paper"


def test_overlapping_strong_chunks_corroborate_each_other_distant_ones_do_not():
    tiles = grid()
    v = image_verdict(tiles, probs_for(tiles, {(96, 96): 0.9, (96, 128): 0.8}), S, 32, rule="corroborated")
    assert v["flagged"] and v["n_corroborated"] == 2 and v["unconfirmed"] == []
    diag = image_verdict(tiles, probs_for(tiles, {(96, 96): 0.9, (128, 128): 0.8}), S, 32, rule="corroborated")
    assert diag["flagged"]  # diagonal neighbours share a quarter chunk
    far = image_verdict(tiles, probs_for(tiles, {(0, 0): 0.9, (64, 64): 0.8}), S, 32, rule="corroborated")
    assert not far["flagged"] and far["n_positive"] == 2  # 64 px apart: no shared pixel


def test_edge_chunk_with_a_weaker_neighbour_is_flagged_only_under_the_looser_corroborating_threshold():
    tiles = grid()
    # a patch at the bottom edge: the edge chunk is sure, the chunk above sees part of it
    p = probs_for(tiles, {(192, 64): 0.97, (160, 64): 0.45})
    assert not image_verdict(tiles, p, S, 32, rule="corroborated")["flagged"]
    v = image_verdict(tiles, p, S, 32, rule="corroborated", corroborate_threshold=0.4)
    assert v["flagged"] and v["n_corroborated"] == 1 and v["corroborate_threshold"] == 0.4
    # the looser threshold is for the corroborating window only: two weak chunks are still nothing
    weak = probs_for(tiles, {(192, 64): 0.5, (160, 64): 0.45})
    assert not image_verdict(tiles, weak, S, 32, rule="corroborated", corroborate_threshold=0.4)["flagged"]
    # and a weak chunk that does not overlap the strong one does not count
    apart = probs_for(tiles, {(192, 64): 0.97, (96, 64): 0.45})
    assert not image_verdict(tiles, apart, S, 32, rule="corroborated", corroborate_threshold=0.4)["flagged"]


def test_a_confirmation_look_corroborates_a_lone_chunk_when_it_is_above_the_threshold():
    tiles = grid()
    p = probs_for(tiles, {(96, 96): 0.99})
    k = next(i for i, t in enumerate(tiles) if (t.row, t.col) == (96, 96))
    looks = [Look(112, 112, k), Look(80, 80, k)]
    v = image_verdict(tiles, p, S, 32, rule="corroborated", looks=looks, look_probs=[0.8, 0.1])
    assert v["flagged"] and v["n_corroborated_by_look"] == 1 and v["unconfirmed"] == []
    v = image_verdict(tiles, p, S, 32, rule="corroborated", looks=looks, look_probs=[0.3, 0.1])
    assert not v["flagged"] and v["unconfirmed"] == [k]
    with pytest.raises(OrbitmlInputError, match="looks"):
        image_verdict(tiles, p, S, 32, looks=looks, look_probs=[0.8])


def test_edge_only_evidence_counts_for_a_positive_chunk_only():
    tiles = grid()
    k = next(i for i, t in enumerate(tiles) if (t.row, t.col) == (192, 192))
    v = image_verdict(tiles, probs_for(tiles, {(192, 192): 0.9}), S, 32, rule="corroborated", edge_only=[k])
    assert v["flagged"] and v["n_edge_only"] == 1
    low = image_verdict(tiles, probs_for(tiles, {(192, 192): 0.5}), S, 32, rule="corroborated", edge_only=[k])
    assert not low["flagged"] and low["n_edge_only"] == 0
    with pytest.raises(OrbitmlInputError, match="rule"):
        image_verdict(tiles, probs_for(tiles, {}), S, 32, rule="majority")


def _whole(win, box):
    (r, c), (r0, r1, c0, c1) = win, box
    return r <= r0 and r1 <= r + S and c <= c0 and c1 <= c + S


def test_some_look_sees_every_small_patch_of_an_interior_chunk_whole():
    tiles = [T(96, 96)]
    looks = confirmation_windows(tiles, [0], S, (256, 256), S // 4)
    assert sorted((lk.row, lk.col) for lk in looks) == sorted(
        (96 + dr, 96 + dc) for dr in (-16, 0, 16) for dc in (-16, 0, 16) if (dr, dc) != (0, 0))
    rng = np.random.default_rng(0)
    for _ in range(500):  # boxes up to 31 px (under half a chunk) anywhere inside the chunk
        hh, ww = rng.integers(1, 32, size=2)
        r0, c0 = 96 + rng.integers(0, S - hh + 1), 96 + rng.integers(0, S - ww + 1)
        box = (r0, r0 + hh, c0, c0 + ww)
        assert any(_whole((lk.row, lk.col), box) for lk in looks), box


def test_looks_are_clipped_to_the_image_and_skip_the_grid_and_each_other():
    tiles = grid()
    corner = next(i for i, t in enumerate(tiles) if (t.row, t.col) == (0, 0))
    looks = confirmation_windows(tiles, [corner], S, (256, 256), 16)
    assert sorted((lk.row, lk.col) for lk in looks) == [(0, 16), (16, 0), (16, 16)]
    taken = {(t.row, t.col) for t in tiles}
    two = [i for i, t in enumerate(tiles) if (t.row, t.col) in ((96, 96), (96, 128))]
    both = confirmation_windows(tiles, two, S, (256, 256), 16, taken)
    pos = [(lk.row, lk.col) for lk in both]
    assert len(pos) == len(set(pos)) and not set(pos) & taken
    assert (96, 112) in pos and {lk.for_chunk for lk in both} == set(two)


def test_evidence_unseen_at_the_image_edge_and_seen_inside():
    tiles = grid()
    edge = T(192, 192)
    # evidence 4 px from the bottom-right corner: no other 64 px window inside the image holds it whole
    assert evidence_unseen(edge, (60.0, 60.0), tiles, S, 8)
    # the same offset inside the image is whole in the chunk diagonally below-right
    inner = T(96, 96)
    assert not evidence_unseen(inner, (60.0, 60.0), tiles, S, 8)
    # evidence in the upper half of the edge chunk is whole in the chunk above it
    assert not evidence_unseen(edge, (20.0, 40.0), tiles, S, 8)
    assert evidence_unseen(edge, (20.0, 40.0), [edge], S, 8)  # nothing else kept
    # evidence across the chunk's middle row is cut in the grid's other chunks, but whole in a look
    assert evidence_unseen(edge, (32.0, 40.0), tiles, S, 8)
    assert not evidence_unseen(edge, (32.0, 40.0), [*tiles, Look(176, 192, 0)], S, 8)


def test_evidence_peak_finds_the_bright_spot_a_max_pooled_detector_responds_to():
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, bias=False), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    with torch.no_grad():
        net[0].weight.fill_(1 / 9)
    x = np.random.default_rng(1).normal(0, 0.1, size=(1, 64, 64)).astype(np.float32)
    x[0, 41:44, 13:16] = 5.0
    r, c = evidence_peak(net, x, smooth=3)
    assert abs(r - 42.5) <= 1.5 and abs(c - 14.5) <= 1.5


def _blob_detector():
    """A hand-set network: 3 x 3 mean m of the normalised chunk (clipped at 8), global max, logit
    4 (m - 6.5): a bright spot whole in the chunk gives p ~ 1; bare ground, or a 4 px spot cut to 2 rows
    or columns (m <= 5.4), p < 0.02."""
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AdaptiveMaxPool2d(1), nn.Flatten())
    with torch.no_grad():
        net[0].weight.fill_(4 / 9)
        net[0].bias.fill_(-26.0)
    return net.eval()


def _scene(tmp_path, spots, black_from=None, name="scene.tif"):
    from orbitml.simulate.hirise import write_hirise

    img = np.clip(np.random.default_rng(4).normal(100, 2, size=(128, 128)), 1, 254)
    for r, c in spots:
        img[r:r + 4, c:c + 4] = 200
    if black_from is not None:
        img[:, black_from:] = 0
    return write_hirise(tmp_path / name, np.rint(img).astype(np.uint8))


@pytest.mark.parametrize("edge", [True, False])
def test_scan_flags_a_corner_patch_only_one_chunk_sees_by_the_edge_rule(tmp_path, edge):
    from orbitml.ice.prep import ChunkSettings
    from orbitml.ice.scan import scan_image

    st = ChunkSettings(chunk=32, input_size=32, overlap=16)  # grid 0, 16, ..., 96; black: drop the chunk
    # black from column 112: chunks at column 96 are dropped, and so is the look at column 88; the spot at
    # rows 122-125 lies below every row-88 look, so the chunk (96, 80) alone sees it whole
    path = _scene(tmp_path, [(122, 104)], black_from=112)
    card = {"name": "blob", "threshold": 0.6, "corroboration": {"edge": edge}}
    s = scan_image(path, _blob_detector(), card, st, None)
    pos = [(t.row, t.col) for t, p in zip(s["_tiles"], s["_probs"], strict=True) if p > 0.6]
    assert pos == [(96, 80)]
    assert all(lk["prob"] < 0.6 for lk in s["looks"]) and s["looks"]
    assert s["flagged"] is edge and s["n_edge_only"] == int(edge) and s["edge_rule"] is edge
    if edge:
        e = s["edge_only"][0]
        assert abs(e["peak_row"] - 123.5) <= 3 and abs(e["peak_col"] - 105.5) <= 3
    # the paper's rule flags the single chunk either way
    assert scan_image(path, _blob_detector(), card, st, None, rule="paper")["flagged"]


def test_scan_confirms_a_lone_chunk_by_a_look_and_records_the_settings(tmp_path):
    from orbitml.ice.prep import ChunkSettings
    from orbitml.ice.scan import scan_image

    st = ChunkSettings(chunk=32, input_size=32, overlap=16)
    # a spot across the grid line at row 48 and column 48 (rows 46-49): whole in the chunk (32, 32) only
    path = _scene(tmp_path, [(46, 46)])
    card = {"name": "blob", "threshold": 0.6}
    s = scan_image(path, _blob_detector(), card, st, None, corroboration={"looks": False, "edge": False})
    assert s["n_positive"] == 1 and not s["flagged"] and s["looks"] == []
    s = scan_image(path, _blob_detector(), card, st, None)
    assert s["flagged"] and s["n_corroborated_by_look"] == 1 and s["n_edge_only"] == 0
    assert max(lk["prob"] for lk in s["looks"]) > 0.6 and s["corroborate_threshold"] == 0.6
    assert s["confirmation_shift"] == 0.25
    with pytest.raises(OrbitmlInputError, match="corroboration"):
        scan_image(path, _blob_detector(), card, st, None, corroboration={"treshold": 0.3})
