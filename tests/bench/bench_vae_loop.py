"""Seconds per epoch: the pipeline's training loop against a plain in-memory PyTorch loop.

    .venv/bin/python tests/bench/bench_vae_loop.py --raw-dir ../shared/data/mnist-mini [--device cuda]

Both train the same VAE (784-500-z, Adam 1e-3, batch 128, dynamic binarisation) on the same
training split; the plain loop is what a notebook does (shuffle, slice, step, no validation). The
pipeline loop adds a validation pass, metrics CSV, checkpoint and progress per epoch.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "workflow" / "scripts"))
from dgm import data, training  # noqa: E402
from dgm.vae import VAE, VAEConfig, VAETrainer  # noqa: E402


def plain_loop(x_uint8, latent, epochs, device):
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=latent)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(len(x_uint8), device=device)
        for i in range(0, len(x_uint8), 128):
            x = torch.bernoulli(x_uint8[perm[i : i + 128]].float() / 255)
            loss, _ = model.loss(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def pipeline_loop(x_uint8, valid, latent, epochs, device):
    training.seed_everything(0)
    model = VAE(VAEConfig(latent_dim=latent)).to(device)
    trainer = VAETrainer(model, lr=1e-3, valid_x=valid)
    with tempfile.TemporaryDirectory() as tmp:
        rows, _ = training.fit(
            trainer, x_uint8, epochs=epochs, batch_size=128, generator=torch.Generator(device=device).manual_seed(0),
            checkpoint_path=Path(tmp) / "c.pt", metrics_path=Path(tmp) / "m.csv", fingerprint="bench",
            prepare_batch=lambda b, g: torch.bernoulli(b.float().div_(255.0), generator=g), device=device,
        )
    return [r["seconds"] for r in rows[1:]], [r["train_seconds"] for r in rows[1:]]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw-dir", required=True)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--latent", type=int, default=20)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = training.select_device(args.device)
    raw = data.load_raw(data.find_raw_files(args.raw_dir))
    s = data.split_and_binarise(raw, valid_size=0.2, split_seed=0, binarize_seed=0, binarization="dynamic")
    x = s["train_images"].reshape(len(s["train_images"]), -1).to(device)
    valid = s["valid_binary"].reshape(len(s["valid_binary"]), -1).float().to(device)
    plain = plain_loop(x, args.latent, args.epochs, device)
    total, train_only = pipeline_loop(x, valid, args.latent, args.epochs, device)
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    print(f"device {device}, {len(x)} training images, z={args.latent}, {args.epochs} epochs (median s/epoch)")
    print(f"plain loop:                      {med(plain):.3f}")
    print(f"pipeline loop, training only:    {med(train_only):.3f}  ({med(train_only) / med(plain):.2f}x)")
    print(f"pipeline loop, with validation,  {med(total):.3f}  ({med(total) / med(plain):.2f}x)")
    print("  CSV and checkpoint")


if __name__ == "__main__":
    main()
