"""Rule train_classifier: the digit CNN whose features define the sample-quality FID."""
from dgm.entry import claim_gpu, start_log

start_log(snakemake.log[0])

claim_gpu()  # before torch touches CUDA

import torch  # noqa: E402

from dgm.tasks.quality import train_classifier  # noqa: E402

p = snakemake.params
torch.set_num_threads(snakemake.threads)
train_classifier(
    splits_path=snakemake.input.splits,
    model_path=snakemake.output.model,
    metrics_path=snakemake.output.metrics,
    epochs=p.epochs,
    batch_size=p.batch_size,
    lr=p.lr,
    seed=p.seed,
    device=p.device,
    eval_batch_size=p.eval_batch_size,
)
