"""Accuracy on a simulated scene with spectral variability: the network beats FCLS with class means.

The scene (``simulate_minmap``: 4 classes, bundles of jittered variants that differ from the library's,
a smooth illumination field over +-15 %, per-pixel albedo +-10 %, 30 dB noise) is what the FCLS
class-mean baseline cannot model: one spectrum per class and abundances that must sum to one leave the
illumination and bundle variability in the abundances.  On this scene FCLS reaches an abundance RMSE of
0.30; the small network trained here (3,200 patch presentations, about 20 s of CPU) gave 0.12 and 0.14 in
two runs (CPU training is not bit-reproducible across runs: oneDNN's threaded gradient sums), and 0.18-0.29
with 25 % fewer patches and half the abundance weight, which is why this budget is used.  The test asks for
an RMSE at least 25 % below FCLS's (about half the margin measured) and a class map far above chance
(kappa > 0.5; measured 0.71-0.75; Unclassified pixels count as errors).
"""

from __future__ import annotations

import yaml

from orbitml.minmap.manifest import load
from orbitml.minmap.run import evaluate_file, write_simulation
from orbitml.minmap.train import train


def test_network_beats_fcls_class_mean_on_abundance_rmse(tmp_path):
    paths = write_simulation(tmp_path, shape=(32, 32), seed=11)
    man = {"scene": "scene.img", "library_dir": "libraries", "simulated": True, "seed": 0, "out": "model",
           "augment": {"n_per_class": 200}, "patches": {"n_train": 800, "n_val": 64},
           "network": {"patch": 11, "width": 16, "c3": 4, "head": 16},
           "training": {"epochs": 4, "batch_size": 32, "lr": 0.006, "abundance_weight": 10.0, "threads": 2}}
    p = tmp_path / "acc.yaml"
    p.write_text(yaml.safe_dump(man))
    model = train(load(p), p, log=lambda *_: None)
    res = evaluate_file(model, paths["scene"], [str(paths["truth_classes"]), str(paths["truth_abundances"])])
    net, base = res["network"], res["fcls_class_mean"]
    assert 0.2 < base["abundance_rmse"] < 0.45  # the baseline really is hurt by the variability
    assert net["abundance_rmse"] < 0.75 * base["abundance_rmse"], (net, base)
    assert net["kappa"] > 0.5, net
