"""Generalisation and memorisation checks on feature vectors: does a model make new images, or
copies of its training set?

Three checks, each set against held-out real images (the test split), which a model that
generalises resembles and a model that copies does not:

- nearest-training-neighbour distances (``nearest_neighbours``, ``distance_summary``): for every
  generated sample g and held-out image t, d(g) = min_x ||g - x|| and d(t) = min_x ||t - x|| over
  the training features x. A copy sits at d = 0; the summary says how many samples lie closer to
  the training set than the closest 1 % (5 %) of held-out images do.
- the C_T data-copying test (``data_copying_test``) of Meehan, Chaudhuri & Dasgupta, "A
  Non-Parametric Test to Detect Data-Copying in Generative Models", AISTATS 2020: the instance
  space is cut into cells by k-means on the training features; in each cell a Mann-Whitney U
  statistic, Z-scored, compares the training distances of generated and of held-out points; the
  cells are averaged with the held-out points' shares as weights. C_T << 0: samples are closer to
  the training set than held-out images are (data-copying); C_T >> 0: farther (underfitting).
- authenticity (``authenticity``) of Alaa, van Breugel, Saveliev & van der Schaar, "How Faithful
  is your Synthetic Data? Sample-level Metrics for Evaluating and Auditing Generative Models",
  ICML 2022: a sample is unauthentic when its nearest training point is closer to it than to that
  point's own nearest other training point; authenticity is the fraction of authentic samples.

Written here, against the papers: neither maintained implementation installs in this environment
(dgm-eval and fld are on no package index this pipeline installs from; dgm-eval also pins numpy,
scipy and scikit-learn releases older than ours). Where we differ from the authors' code, the
function says so.

``verdict_*`` turn each statistic into one word of ``VERDICTS``: a check flags a model when its
statistic lies more than ``FLAG_Z`` null standard deviations from what held-out images give.

Every function takes features (N, F) on any device and returns Python numbers or tensors on that
device; the one random draw (k-means++ seeding) takes a generator on the features' device.
"""
from __future__ import annotations

import math

import torch

FLAG_Z = 3.0  # a check flags a model beyond this many null standard deviations
VERDICTS = ("data-copying", "underfitting", "not flagged", "undetermined")
BLOCK = 2**24  # elements of one (queries x reference) block of scores: 64 MiB in float32


# --------------------------------------------------------------------------- nearest neighbours


def nearest_neighbours(queries: torch.Tensor, reference: torch.Tensor, *, exclude: torch.Tensor | None = None,
                       block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's nearest reference row in Euclidean distance: distances (M,) in float64 and
    indices (M,) into ``reference``. ``exclude`` (M,) names one reference row per query that it
    may not match (its own row, when the queries are reference rows).

    The (M, N) scores are computed a block of queries at a time (``block`` elements), so 10,000 x
    50,000 features never sit in memory at once. The argmin comes from ||x||^2 - 2 q.x (one matmul
    per block); the distance to the chosen row is then computed directly, in float64, so an exact
    copy is at distance 0, not at the rounding error of the expanded square."""
    if queries.ndim != 2 or reference.ndim != 2 or queries.shape[1] != reference.shape[1]:
        raise ValueError(f"need features (M, F) and (N, F), got {tuple(queries.shape)} and {tuple(reference.shape)}")
    if len(reference) < 1 + (exclude is not None):
        raise ValueError(f"{len(reference)} reference rows: too few to find a neighbour")
    if exclude is not None and exclude.shape != (len(queries),):
        raise ValueError(f"exclude must name one row per query, shape ({len(queries)},), got {tuple(exclude.shape)}")
    ref_sq = reference.pow(2).sum(1)  # (N,)
    rows = max(1, block // len(reference))
    picks = []
    for start in range(0, len(queries), rows):
        q = queries[start : start + rows]  # (b, F)
        scores = ref_sq - 2.0 * (q @ reference.T)  # (b, N): ||q - x||^2 - ||q||^2
        if exclude is not None:
            scores[torch.arange(len(q), device=q.device), exclude[start : start + rows]] = torch.inf
        picks.append(scores.argmin(1))
    index = torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long, device=queries.device)
    distance = (queries.double() - reference[index].double()).norm(dim=1)  # (M,)
    return distance, index


def distance_summary(generated: torch.Tensor, held_out: torch.Tensor) -> dict:
    """Training-set distances of generated samples (M,) against those of held-out images (N,):
    medians and their ratio (< 1: samples sit closer to the training set than new real images do),
    the held-out 1st and 5th percentiles, the fraction of samples below each (about 0.01 and 0.05
    for a model that generalises; 1 for a copycat), and ``z``: how many binomial standard errors
    the fraction below the 1st percentile exceeds the held-out images' own fraction below it."""
    generated, held_out = generated.double(), held_out.double()
    q01, q05 = torch.quantile(held_out, torch.tensor([0.01, 0.05], dtype=torch.float64, device=held_out.device))
    m, n = len(generated), len(held_out)
    below, base = (generated < q01).double().mean().item(), (held_out < q01).double().mean().item()
    p = max(base, 1.0 / n)  # the null rate; never 0, which would make any excess infinitely significant
    median_g, median_t = generated.median().item(), held_out.median().item()
    return {
        "median_generated": median_g,
        "median_held_out": median_t,
        "median_ratio": median_g / median_t if median_t > 0 else None,
        "held_out_q01": q01.item(),
        "held_out_q05": q05.item(),
        "fraction_below_q01": below,
        "fraction_below_q05": (generated < q05).double().mean().item(),
        "held_out_fraction_below_q01": base,
        "z": (below - base) / math.sqrt(p * (1 - p) * (1 / m + 1 / n)),
    }


# --------------------------------------------------------------------------- the C_T test


def kmeans(x: torch.Tensor, k: int, *, generator: torch.Generator, iterations: int = 100) -> torch.Tensor:
    """k centroids (k, F) of the rows of x: k-means++ seeding (Arthur & Vassilvitskii 2007, its
    draws from ``generator``), then Lloyd's iterations until no point changes cell. A cell that
    empties keeps its centroid (and stays empty)."""
    if not 1 <= k <= len(x):
        raise ValueError(f"k-means: need 1 <= k <= {len(x)} points, got k = {k}")
    first = torch.randint(len(x), (1,), generator=generator, device=x.device)
    centroids = [x[first]]  # (1, F) each
    d2 = (x - x[first]).pow(2).sum(1)  # (N,) squared distance to the nearest centroid so far
    for _ in range(1, k):
        weights = d2 if d2.sum() > 0 else torch.ones_like(d2)  # every point on a centroid: any will do
        pick = torch.multinomial(weights.double(), 1, generator=generator)
        centroids.append(x[pick])
        d2 = torch.minimum(d2, (x - x[pick]).pow(2).sum(1))
    c = torch.cat(centroids)  # (k, F)
    labels = None
    for _ in range(iterations):
        new = assign_cells(x, c)  # (N,)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        counts = torch.bincount(labels, minlength=k).unsqueeze(1)  # (k, 1)
        sums = torch.zeros_like(c).index_add_(0, labels, x)  # (k, F)
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return c


def assign_cells(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The cell (index of the nearest centroid) of every row of x, (N,)."""
    return nearest_neighbours(x, centroids)[1]


def mann_whitney_u(x: torch.Tensor, y: torch.Tensor) -> float:
    """The Mann-Whitney U statistic of x against y: the number of pairs (x_i, y_j) with x_i > y_j,
    ties counting one half (scipy.stats.mannwhitneyu(x, y).statistic), from mid-ranks."""
    both = torch.cat([x, y]).double()
    _, inverse, counts = torch.unique(both, sorted=True, return_inverse=True, return_counts=True)
    first = torch.cumsum(counts, 0) - counts + 1  # the rank of each distinct value's first copy
    ranks = (first + (counts - 1) / 2.0)[inverse]  # mid-ranks
    return ranks[: len(x)].sum().item() - len(x) * (len(x) + 1) / 2.0


def z_u(generated: torch.Tensor, held_out: torch.Tensor) -> float:
    """Z-scored U of the training distances of generated (m,) against held-out (n,) points:
    (U - mn/2) / sqrt(mn(m + n + 1)/12), N(0, 1) when both come from one distribution; negative
    when the generated points are the closer. No continuity or tie correction, as in the paper
    (the authors' code moves the mean by 0.5 for continuity)."""
    m, n = len(generated), len(held_out)
    return (mann_whitney_u(generated, held_out) - m * n / 2.0) / math.sqrt(m * n * (m + n + 1) / 12.0)


def data_copying_test(train: torch.Tensor, held_out: torch.Tensor, generated: torch.Tensor, *, cells: int,
                      generator: torch.Generator, min_generated: int = 20, iterations: int = 100,
                      block: int = BLOCK) -> dict:
    """Meehan, Chaudhuri & Dasgupta's C_T of generated features Q_m (m, F) against held-out P_n
    (n, F), given the training features T (l, F).

    The cells are the k-means cells (``cells`` of them, seeded from ``generator``) of the training
    features. In each cell pi the training distances are to the training points of that cell, T_pi
    (as the authors' code computes them), and Z_U compares those of Q_m's and of P_n's points in
    pi. C_T = sum_pi P_n(pi) Z_U(pi) / sum_pi P_n(pi) over the cells pi of Pi_tau: those holding at
    least ``min_generated`` generated points (the paper's tau = 20/m: too few and U's normal
    approximation fails; the authors' code asks for more than 20) and at least one held-out point.

    Under the null (samples distributed as held-out images) the Z_U are independent N(0, 1), so C_T
    has mean 0 and standard deviation ``null_sd`` = sqrt(sum_pi w_pi^2), w_pi the normalised weights;
    ``z`` = C_T / null_sd. ``C_T``, ``null_sd`` and ``z`` are None when no cell qualifies.
    ``test_share_used``: the held-out mass of the cells used (the rest is not tested: cells a model
    leaves nearly empty). ``per_cell``: counts, Z_U (None when unused) and whether it was used."""
    centroids = kmeans(train, cells, generator=generator, iterations=iterations)
    labels = [assign_cells(x, centroids) for x in (train, held_out, generated)]
    n = len(held_out)
    per_cell, weights, zs = [], [], []
    for c in range(cells):
        t, p, q = (x[lab == c] for x, lab in zip((train, held_out, generated), labels))
        used = len(t) > 0 and len(p) > 0 and len(q) >= min_generated
        z = None
        if used:
            d_p = nearest_neighbours(p, t, block=block)[0]
            d_q = nearest_neighbours(q, t, block=block)[0]
            z = z_u(d_q, d_p)
            weights.append(len(p) / n)
            zs.append(z)
        per_cell.append({"train": len(t), "held_out": len(p), "generated": len(q), "Z_U": z, "used": used})
    out = {"cells": cells, "min_generated": min_generated, "cells_used": len(zs), "test_share_used": sum(weights),
           "C_T": None, "null_sd": None, "z": None}
    if zs:
        w = torch.tensor(weights, dtype=torch.float64)
        w = w / w.sum()
        c_t = float((w * torch.tensor(zs, dtype=torch.float64)).sum())
        null_sd = float(w.pow(2).sum().sqrt())
        out.update(C_T=c_t, null_sd=null_sd, z=c_t / null_sd)
    return {**out, "per_cell": per_cell}


# --------------------------------------------------------------------------- authenticity


def authenticity(generated: torch.Tensor, train: torch.Tensor, *, neighbours: tuple | None = None,
                 block: int = BLOCK) -> dict:
    """Alaa et al.'s authenticity of generated features (m, F) against the training features:
    sample g, with nearest training point x* = argmin_x ||g - x||, is authentic when
    ||g - x*|| > min_{x != x*} ||x* - x||, the distance from x* to its own nearest training
    neighbour; a tie (an exact copy of a training image that is itself duplicated there) is not.

    The authors' first code compared, for each *training* point, its nearest *generated* point's
    index into the array of training-to-training distances (ahmedmalaa/evaluating-generative-models
    issue #4): a mean over the wrong set, indexed by the wrong array. Here the comparison is per
    generated sample, through its own nearest training point.

    ``neighbours``: (distances, indices) of ``nearest_neighbours(generated, train)`` when already
    computed. Only the training points that are some sample's nearest neighbour need their own
    neighbour, so the cost is that of two (m x l) searches, not of an (l x l) one.
    Returns ``authenticity`` (the fraction) and ``authentic`` (m,), a bool per sample."""
    d, index = neighbours if neighbours is not None else nearest_neighbours(generated, train, block=block)
    hit, inverse = torch.unique(index, return_inverse=True)
    own = nearest_neighbours(train[hit], train, exclude=hit, block=block)[0]  # (h,) each hit's own neighbour
    authentic = d > own[inverse]
    return {"authenticity": authentic.double().mean().item(), "authentic": authentic}


# --------------------------------------------------------------------------- verdicts


def binomial_z(rate: float, m: int, baseline: float, n: int) -> float:
    """(baseline - rate) in standard errors of the difference of two proportions, pooled: positive
    when the m samples' rate falls short of the n held-out images' baseline."""
    p = (rate * m + baseline * n) / (m + n)
    p = min(max(p, 1.0 / (m + n)), 1 - 1.0 / (m + n))  # a pooled rate of 0 or 1 has no spread: bound it
    return (baseline - rate) / math.sqrt(p * (1 - p) * (1 / m + 1 / n))


def verdict_distances(summary: dict, flag_z: float = FLAG_Z) -> str:
    """Data-copying when more samples lie below the held-out 1st percentile than chance allows."""
    return "data-copying" if summary["z"] > flag_z else "not flagged"


def verdict_c_t(result: dict, flag_z: float = FLAG_Z) -> str:
    """The sign of C_T beyond ``flag_z`` null standard deviations: data-copying below, underfitting
    above; undetermined when no cell had enough samples."""
    if result["z"] is None:
        return "undetermined"
    return "data-copying" if result["z"] < -flag_z else "underfitting" if result["z"] > flag_z else "not flagged"


def verdict_authenticity(z: float, flag_z: float = FLAG_Z) -> str:
    """Data-copying when the samples' authenticity falls short of held-out images' (``binomial_z``)."""
    return "data-copying" if z > flag_z else "not flagged"
