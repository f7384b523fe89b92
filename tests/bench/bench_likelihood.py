"""Seconds of the importance-sampling hot path (rule test_nll) for variants compared in one run.

    .venv/bin/python tests/bench/bench_likelihood.py [--raw-dir ../shared/data/mnist-mini] [--model model.pt]

K samples per image for a batch of test images through a z = 20 VAE (784-500-20, random weights
unless --model): the decoder's 500 -> 784 matmul on K x B rows and the Bernoulli log-likelihood of
every row dominate. Variants, timed interleaved so that load from other jobs on a shared machine
hits them alike (min and median over repeats, wall and CPU seconds per 100 images):

- log-likelihood: "bce" is binary_cross_entropy_with_logits on x expanded to the logits' shape
  (the training path); "inplace" is VAE.log_likelihood's evaluation path, per-pixel log sigmoid of
  (2x - 1) logits written in place;
- rows: images x samples per decoder call (16384 is dgm.estimators' default chunk);
- OpenMP: worker threads spinning (the default) or sleeping (OMP_WAIT_POLICY=PASSIVE, which the
  likelihood entry scripts set); each setting runs in its own process, as it must be set before
  torch loads.

Every variant's estimates are compared with the first one's (the same draws): the largest
difference is float rounding. The last column projects K = 5000 on 10,000 images from the best
wall time. Prints a table; asserts nothing.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"


def worker(args) -> list[dict]:
    import torch

    sys.path.insert(0, str(SCRIPTS))
    from dgm import data, estimators
    from dgm.distributions import bernoulli_log_likelihood
    from dgm.tasks.vae import load_vae
    from dgm.vae import VAE, VAEConfig

    torch.set_num_threads(args.threads)
    if args.model:
        model = load_vae(args.model)
    else:
        torch.manual_seed(0)
        model = VAE(VAEConfig(latent_dim=20)).eval()
    if args.raw_dir:
        images = data.load_raw(data.find_raw_files(args.raw_dir))["test_images"][: args.images]
        x = data.binarize(images, generator=torch.Generator().manual_seed(1234)).reshape(len(images), -1).float()
    else:
        x = torch.bernoulli(torch.full((args.images, 784), 0.13), generator=torch.Generator().manual_seed(0))

    class BCE:  # the same model, log p(x|z) by the training path's formula
        latent_dim = model.latent_dim
        encode = staticmethod(model.encode)

        @staticmethod
        def log_likelihood(x, z):
            return bernoulli_log_likelihood(x, model.logits(z))

    variants = [("bce", 16384), ("bce", 2000)] + [("inplace", r) for r in (16384, 4000, 2000, 1000)]
    times, reference, diffs = {v: [] for v in variants}, None, {}
    for _ in range(args.repeats):
        for loglik, rows in variants:
            m = BCE if loglik == "bce" else model
            w0, c0 = time.perf_counter(), time.process_time()
            out = torch.cat([
                estimators.importance_sampled_log_px(m, b, k=args.k, generator=torch.Generator().manual_seed(i),
                                                     chunk_size=max(1, rows // len(b)))
                for i, b in enumerate(x.split(args.batch_size))
            ])
            times[(loglik, rows)].append((time.perf_counter() - w0, time.process_time() - c0))
            reference = out if reference is None else reference
            diffs[(loglik, rows)] = (out - reference).abs().max().item()
    per100 = 100 / len(x)
    return [{"loglik": lbl, "rows": r, "wall_min": min(w for w, _ in t) * per100,
             "wall_median": sorted(w for w, _ in t)[len(t) // 2] * per100, "cpu_min": min(c for _, c in t) * per100,
             "max_diff": diffs[(lbl, r)], "threads": args.threads, "omp": os.environ.get("OMP_WAIT_POLICY", "default")}
            for (lbl, r), t in times.items()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", help="folder with the MNIST IDX files (default: random binary images)")
    ap.add_argument("--model", help="a trained VAE's model.pt (default: random weights, z = 20)")
    ap.add_argument("--k", type=int, default=1000, help="samples per image (the rule uses 5000)")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settings", default="2:default,2:PASSIVE,1:default",
                    help="threads:OMP_WAIT_POLICY pairs, each run in its own process")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    rows = []
    for setting in args.settings.split(","):
        threads, policy = setting.split(":")
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        cmd = [sys.executable, __file__, "--worker", "--threads", threads, "--k", str(args.k), "--images",
               str(args.images), "--batch-size", str(args.batch_size), "--repeats", str(args.repeats)]
        cmd += ["--raw-dir", args.raw_dir] if args.raw_dir else []
        cmd += ["--model", args.model] if args.model else []
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows += json.loads(out.stdout.strip().splitlines()[-1])

    scale = 5000 / args.k * 10000 / 100  # per 100 images at K -> 10,000 images at K = 5000
    print(f"K = {args.k}, {args.images} images in batches of {args.batch_size}, {args.repeats} repeats; "
          f"seconds per 100 images (load average {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'threads':>7} {'OpenMP':>8} {'log-lik':>8} {'rows':>6} {'wall min':>9} {'wall med':>9} {'CPU min':>8} "
          f"{'max diff':>9} {'K=5000 x 10k, min':>18}")
    for r in rows:
        print(f"{r['threads']:>7} {r['omp']:>8} {r['loglik']:>8} {r['rows']:>6} {r['wall_min']:>9.2f} "
              f"{r['wall_median']:>9.2f} {r['cpu_min']:>8.2f} {r['max_diff']:>9.1e} "
              f"{r['wall_min'] * scale / 60:>14.1f} min")


if __name__ == "__main__":
    main()
