"""The report section "How far to trust these numbers" (text: report/sections/trust.rst.j2): model
against model as paired differences on the same images beside the unpaired figures, the train-versus-test
log-likelihood gap of every likelihood model, and, where the sample-quality and memorisation results carry
them, the uncertainty of each quality number, FD-infinity and the memorisation checks."""
from __future__ import annotations

import itertools
import math

from dgm import registry
from dgm.experiments import NOISE_SE, paired_difference

# The per-image estimates that pair across models: (per-image file, array, what it estimates, sign to log p(x),
# whether it compares only models of the same data: all but the Gaussian observation model, which puts every
# decoder on the grey levels).
ESTIMATES = (
    ("test_nll.npz", "nll", "importance-sampled log p(x), all test images", -1.0, True),
    ("test_metrics.npz", "nll", "exact (or dequantisation-bound) log p(x), all test images", -1.0, True),
    ("ais.npz", "ais", "AIS log p(x), own observation model", 1.0, True),
    ("ais.npz", "ais_gaussian", "AIS log p(x), Gaussian observation model on grey levels", 1.0, False),
)


def _title(key: dict) -> str:
    spec = registry.get(key["model"])
    point = f" [{key['point']}]" if key["point"] else ""
    latent = "" if spec.fixed_latent is not None and not spec.latent_variable else f" z = {key['latent']}"
    return f"{spec.title}{point}{latent}"


def _figure_model(path: str) -> str:
    """The model of a figure named memorisation_<model>_z<latent>_seed<seed>.png, by its title."""
    stem = path.rsplit("/", 1)[-1].removeprefix("memorisation_")
    return registry.get(stem.rsplit("_z", 1)[0]).title


def paired_rows(paths: list[str]) -> list[dict]:
    """Every pair of runs of different models (same seed) with per-image values of one estimate on the
    same images: the difference of mean log p(x) (second - first) as the mean of per-image differences
    ± its paired SE, beside the unpaired SE (both sides' SEs combined) the tables elsewhere imply."""
    import numpy as np

    from dgm.io import read_arrays
    from dgm.results import run_key

    runs: dict[tuple, list] = {}  # (file, array) -> [(run key, images, log p(x))]
    for path in paths:
        name = path.rsplit("/", 1)[-1]
        arrays = read_arrays(path)
        for file, key, _, sign, _ in ESTIMATES:
            if name == file and key in arrays:
                runs.setdefault((file, key), []).append((run_key(path), arrays["image"], sign * arrays[key]))
    rows = []
    for file, key, label, _, same_data in ESTIMATES:
        for (a, ia, va), (b, ib, vb) in itertools.combinations(runs.get((file, key), []), 2):
            if a["model"] == b["model"] or a["seed"] != b["seed"] or not np.array_equal(ia, ib):
                continue
            if same_data and registry.get(a["model"]).data != registry.get(b["model"]).data:
                continue  # log-likelihoods of other pixels (binarised against 8-bit) do not compare
            paired = paired_difference([((ia, va), (ib, vb))])
            unpaired = math.sqrt((va.var(ddof=1) + vb.var(ddof=1)) / len(va))
            rows.append({"estimate": label, "first": _title(a), "second": _title(b), "seed": a["seed"],
                         "images": paired["paired_images"], "difference": paired["paired_change"],
                         "paired_se": paired["paired_se"], "unpaired_se": unpaired,
                         "beyond_noise": "yes" if paired["beyond_noise"] else "no",
                         "beyond_unpaired": "yes" if abs(paired["paired_change"]) > NOISE_SE * unpaired else "no"})
    return rows


def report_section(inputs: dict[str, list[str]]) -> dict | None:
    from dgm.formatting import captioned_figures, fmt, fmt_pm
    from dgm.memorisation import FLAG_Z
    from dgm.results import read_json, run_key
    from dgm.tasks.memorisation import summary_rows

    pairs = paired_rows(inputs.get("per_image", []))
    gaps = []
    for path in inputs.get("generalisation", []):
        g, key = read_json(path), run_key(path)
        gaps.append({"model": _title(key), "seed": key["seed"], "estimator": g["estimator"], "images": g["n_images"],
                     "train": fmt_pm(g["train_log_px"], g["train_log_px_stderr"]),
                     "test": fmt_pm(g["test_log_px"], g["test_log_px_stderr"]),
                     "gap": fmt_pm(g["gap"], g["gap_stderr"]),
                     "beyond_noise": "yes" if abs(g["gap"]) > NOISE_SE * g["gap_stderr"] else "no"})
    memorised = [{"model": _title(r), "seed": r["seed"], "samples": r["n_samples"],
                  "nn_ratio": fmt(r["nn_median_ratio"], 3), "nn_close": fmt(r["nn_fraction_below_q01"], 4),
                  "nn_verdict": r["nn_verdict"], "c_t": fmt(r["c_t"]), "c_t_verdict": r["c_t_verdict"],
                  "authenticity": f"{fmt(r['authenticity'], 3)} ({fmt(r['held_out_authenticity'], 3)})",
                  "authenticity_verdict": r["authenticity_verdict"]}
                 for r in summary_rows(inputs.get("memorisation", []))]
    if not pairs and not gaps and not memorised:
        return None
    shown = [{**r, "difference": fmt(r["difference"]), "paired_se": fmt(r["paired_se"]),
              "unpaired_se": fmt(r["unpaired_se"])} for r in pairs]
    return {"id": "trust",
            "figures": [fig for path in inputs.get("memorisation_figures", [])  # its caption names its model
                        for fig in captioned_figures([path], {"memorisation": "memorisation"},
                                                     wildcards={"model": _figure_model(path)})],
            "data": {"pairs": shown, "gaps": gaps, "noise_se": NOISE_SE, "memorised": memorised,
                     "flag_z": FLAG_Z,
                     "hidden_by_spread": sum(r["beyond_noise"] == "yes" and r["beyond_unpaired"] == "no"
                                             for r in pairs)}}
