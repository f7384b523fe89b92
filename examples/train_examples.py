"""Train the example models (examples/models) on binarised MNIST and save what the pipeline evaluates.

    python examples/train_examples.py --raw-dir DIR --out DIR [--epochs N] [--seed S]

Writes to --out: conv_vae.pt and bernoulli_mixture.pt (plain state_dicts), conv_vae_eval.json and
bernoulli_mixture_eval.json (test-set numbers), conv_vae_samples.npy (2,000 samples, uint8 (2000, 28, 28)).
"""
from __future__ import annotations

import argparse
import gzip
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
from bernoulli_mixture import BernoulliMixture  # noqa: E402
from conv_vae import ConvVAE  # noqa: E402

LATENT_DIM, CHANNELS = 8, 16
COMPONENTS, EM_ITERATIONS = 20, 30
N_SAMPLES = 2000


def read_idx_images(raw_dir: Path, name: str) -> np.ndarray:
    """An IDX image file (plain or .gz) as uint8 (N, 28, 28)."""
    path = raw_dir / name
    data = path.read_bytes() if path.exists() else gzip.decompress((raw_dir / f"{name}.gz").read_bytes())
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051 or (rows, cols) != (28, 28):
        raise ValueError(f"{name}: not a 28x28 IDX image file (magic {magic}, {rows}x{cols})")
    return np.frombuffer(data, dtype=np.uint8, count=n * 784, offset=16).reshape(n, 28, 28)


def binarise(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each pixel 1 with probability pixel / 255: float32 (N, 784) in {0, 1}."""
    p = images.reshape(len(images), 784) / 255.0
    return (rng.random(p.shape) < p).astype(np.float32)


def train_vae(model: ConvVAE, x: torch.Tensor, epochs: int) -> None:
    """Adam on the mean one-sample negative ELBO, x (N, 784) in {0, 1}."""
    # Start every output logit at the mean pixel's logit: the first steps then learn strokes, not the background
    # (on 10,000 images and 3 epochs, test nelbo ~141 instead of ~186).
    p = x.mean()
    with torch.no_grad():
        model.decoder[-1].bias.fill_(torch.log(p / (1 - p)).item())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(1, epochs + 1):
        total = 0.0
        for idx in torch.randperm(len(x)).split(128):
            loss = model(x[idx])["nelbo"].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"  epoch {epoch}: train nelbo {total / len(x):.2f}")


@torch.inference_mode()
def test_nelbo(model: ConvVAE, x: torch.Tensor, seed: int) -> np.ndarray:
    """One-sample negative ELBO per test image (N,)."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([model(xb, generator=g)["nelbo"] for xb in x.split(1000)]).numpy()


def fit_mixture_em(x: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """EM for a K-component Bernoulli mixture on x (N, 784) in float64: weights pi (K,), pixel means mu (K, 784).
    A Beta(2, 2) prior on each mean and a Dirichlet(2) prior on the weights keep them strictly inside (0, 1)."""
    x = x.astype(np.float64)
    pi = np.full(k, 1.0 / k)
    mu = rng.uniform(0.25, 0.75, size=(k, 784))
    for it in range(1, iterations + 1):
        joint = np.log(pi) + x @ np.log(mu).T + (1 - x) @ np.log1p(-mu).T  # (N, K)
        top = joint.max(axis=1, keepdims=True)
        log_px = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))  # (N,)
        resp = np.exp(joint - log_px[:, None])  # (N, K)
        n_k = resp.sum(axis=0)  # (K,)
        pi = (n_k + 1) / (len(x) + k)
        mu = (resp.T @ x + 1) / (n_k[:, None] + 2)
        if it == 1 or it % 10 == 0:
            print(f"  EM iteration {it}: train log-likelihood {log_px.mean():.2f} (before this M-step)")
    return pi, mu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, required=True, help="folder with the MNIST IDX files")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)

    t = time.perf_counter()
    train_x = binarise(read_idx_images(args.raw_dir, "train-images-idx3-ubyte"), rng)  # (N, 784)
    test_x = binarise(read_idx_images(args.raw_dir, "t10k-images-idx3-ubyte"), rng)  # (M, 784)
    print(f"data: {len(train_x)} train, {len(test_x)} test images ({time.perf_counter() - t:.1f} s)")

    t = time.perf_counter()
    vae = ConvVAE(latent_dim=LATENT_DIM, channels=CHANNELS)
    train_vae(vae, torch.from_numpy(train_x), args.epochs)
    vae.eval()
    torch.save(vae.state_dict(), args.out / "conv_vae.pt")
    print(f"conv VAE training: {time.perf_counter() - t:.1f} s")

    t = time.perf_counter()
    nelbo = test_nelbo(vae, torch.from_numpy(test_x), args.seed)
    vae_eval = {"test_nelbo": float(nelbo.mean()), "test_nelbo_stderr": float(nelbo.std() / np.sqrt(len(nelbo))),
                "n_test": len(nelbo), "latent_dim": LATENT_DIM, "epochs": args.epochs}
    (args.out / "conv_vae_eval.json").write_text(json.dumps(vae_eval, indent=2) + "\n")
    print(f"conv VAE test nelbo {vae_eval['test_nelbo']:.2f} +- {vae_eval['test_nelbo_stderr']:.2f} "
          f"({time.perf_counter() - t:.1f} s)")

    t = time.perf_counter()
    with torch.inference_mode():
        means = vae.sample(N_SAMPLES, generator=torch.Generator().manual_seed(args.seed))  # (n, 1, 28, 28)
    np.save(args.out / "conv_vae_samples.npy", (255 * means[:, 0].numpy()).round().astype(np.uint8))
    print(f"conv VAE samples: {N_SAMPLES} ({time.perf_counter() - t:.1f} s)")

    t = time.perf_counter()
    pi, mu = fit_mixture_em(train_x, COMPONENTS, EM_ITERATIONS, rng)
    mixture = BernoulliMixture(components=COMPONENTS)
    mixture.logit_weights.copy_(torch.from_numpy(np.log(pi)))
    mixture.logits.copy_(torch.from_numpy(np.log(mu) - np.log1p(-mu)))
    torch.save(mixture.state_dict(), args.out / "bernoulli_mixture.pt")
    ll = BernoulliMixture.closed_form_log_prob(test_x, mixture.logit_weights.numpy(), mixture.logits.numpy())
    mixture_eval = {"test_log_likelihood": float(ll.mean()),
                    "test_log_likelihood_stderr": float(ll.std() / np.sqrt(len(ll))),
                    "n_test": len(ll), "components": COMPONENTS, "em_iterations": EM_ITERATIONS}
    (args.out / "bernoulli_mixture_eval.json").write_text(json.dumps(mixture_eval, indent=2) + "\n")
    print(f"Bernoulli mixture test log-likelihood {mixture_eval['test_log_likelihood']:.2f} "
          f"+- {mixture_eval['test_log_likelihood_stderr']:.2f} ({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
