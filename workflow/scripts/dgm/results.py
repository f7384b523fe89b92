"""Reading the results tree, whose run folders are results/{dataset}/{model}/{point}z{latent}/seed{seed}/
({point}: a sweep point's folders, e.g. "hidden_dim~256/", none outside a sweep), and Snakemake's
benchmark files."""
from __future__ import annotations

import csv
import functools
import json
import os
from pathlib import Path


def run_key(path: str | os.PathLike) -> dict:
    """dataset, model, sweep point, latent and seed from a run file's path
    .../{dataset}/{model}/[<key>~<value>/...]z{latent}/seed{seed}/file; ``point`` is the sweep point
    as "key=value, ..." ("" outside a sweep)."""
    parts = Path(path).parts
    try:
        latent, seed = int(parts[-3][1:]), int(parts[-2][4:])
        i = len(parts) - 4
        point = []
        while "~" in parts[i]:  # a sweep point's folders, innermost last
            point.insert(0, parts[i].replace("~", "=", 1))
            i -= 1
        return {"dataset": parts[i - 1], "model": parts[i], "point": ", ".join(point), "latent": latent, "seed": seed}
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


def read_csv(path) -> list[dict]:
    """A CSV result file as rows, numbers parsed (empty cells stay '')."""
    with open(path, newline="") as f:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(f)]


def read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def _num(v):
    for parse in (int, float):
        try:
            return parse(v)
        except (TypeError, ValueError):
            pass
    return v


RUN_KEY = ("model", "point", "latent", "seed")  # what tells runs of one study apart


def by_run(paths, read=read_json) -> dict[tuple, object]:
    """{(model, point, latent, seed): read(path)} for result files of several runs."""
    return {tuple(run_key(p)[k] for k in RUN_KEY): read(p) for p in paths}


def curve_summary(metrics_path, best: str | None = None) -> dict:
    """A run's metrics.csv as one record: its key, the last epoch's row, ``epochs``, the mean
    training seconds per epoch ``s_epoch`` and, given a column ``best``, its lowest value over the
    trained epochs as ``best_valid``."""
    curve = read_csv(metrics_path)
    trained = [r for r in curve if r["epoch"] > 0]
    out = {**run_key(metrics_path), **curve[-1], "epochs": curve[-1]["epoch"],
           "s_epoch": sum(r["train_seconds"] for r in trained) / len(trained)}
    if best is not None:
        out["best_valid"] = min(r[best] for r in trained)
    return out


def model_record(path) -> dict:
    """What a run's model.pt says about it: run key, description, options, trained epochs, device,
    and the parameter count of the rebuilt network (of each sub-network too, e.g. a GAN's
    generator). Several readers ask for the same runs: each file is read once (again if it changes)."""
    return dict(_model_record(str(path), os.stat(path).st_mtime_ns))


@functools.lru_cache(maxsize=None)
def _model_record(path: str, mtime_ns: int) -> dict:
    import torch

    from dgm.models import build_model

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    network = build_model(ckpt["model"])
    return {
        **run_key(path),
        "description": ckpt["model"],
        "options": ckpt.get("options", {}),
        "epochs": ckpt.get("epoch"),
        "device": ckpt.get("device_name", ckpt.get("device", "unknown")),
        "parameters": sum(p.numel() for p in network.parameters()),
        # The sub-networks a model class names in PARTS (a GAN's generator and discriminator), counted apart.
        "parts": {name: sum(p.numel() for p in getattr(network, name).parameters())
                  for name in getattr(type(network), "PARTS", ())},
    }


def model_records(paths, model: str) -> list[dict]:
    """model_record of every run of ``model`` among the model files ``paths``."""
    return [model_record(p) for p in paths if run_key(p)["model"] == model]


def read_benchmark(path) -> dict | None:
    """The first (usually only) record of a Snakemake benchmark file, numbers parsed; None if empty."""
    with open(path) as f:
        records = list(csv.DictReader(f, delimiter="\t"))
    return {k: _num(v) for k, v in records[0].items()} if records else None
