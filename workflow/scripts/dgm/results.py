"""Reading the results tree, whose run folders are results/{dataset}/{model}/z{latent}/seed{seed}/."""
from __future__ import annotations

import os
from pathlib import Path


def run_key(path: str | os.PathLike) -> dict:
    """dataset, model, latent and seed from a results path .../{dataset}/{model}/z{latent}/seed{seed}/file."""
    parts = Path(path).parts
    try:
        return {"dataset": parts[-5], "model": parts[-4], "latent": int(parts[-3][1:]), "seed": int(parts[-2][4:])}
    except (IndexError, ValueError):
        raise ValueError(f"{path}: not a run file of the form .../<model>/z<latent>/seed<seed>/<file>") from None


def metrics_by_latent(paths) -> dict[int, list]:
    """The metrics.csv frames of several runs, grouped by latent size (sizes and seeds in order)."""
    import pandas as pd

    keyed = sorted((run_key(p)["latent"], run_key(p)["seed"], p) for p in paths)
    out: dict[int, list] = {}
    for latent, _, path in keyed:
        out.setdefault(latent, []).append(pd.read_csv(path))
    return out
