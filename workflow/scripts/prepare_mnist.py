"""Rule prepare_mnist: train/validation/test splits as tensors, with fixed-seed binarised copies."""
from dgm.entry import start_log, write_json

log = start_log(snakemake.log[0])
inp, out, params = snakemake.input, snakemake.output, snakemake.params

import json  # noqa: E402

from dgm import data  # noqa: E402

raw = data.load_raw({
    "train_images": inp.images_train,
    "train_labels": inp.labels_train,
    "test_images": inp.images_test,
    "test_labels": inp.labels_test,
})
splits = data.split_and_binarise(
    raw,
    valid_size=params.valid_size,
    split_seed=params.split_seed,
    binarize_seed=params.binarize_seed,
    binarization=params.binarization,
)
with open(inp.checksums) as f:
    checksums = json.load(f)
meta = {
    "dataset": snakemake.wildcards.dataset,
    "n_train": len(splits["train_images"]),
    "n_valid": len(splits["valid_images"]),
    "n_test": len(splits["test_images"]),
    "binarization": params.binarization,
    "valid_size": params.valid_size,
    "split_seed": params.split_seed,
    "binarize_seed": params.binarize_seed,
    "md5": {k: v["md5"] for k, v in checksums["files"].items()},
    "official_md5": all(v["official_md5"] for v in checksums["files"].values()),
}
data.save_splits(splits, meta, out.splits)
write_json(meta, out.summary)
log.info("splits: %d train, %d validation, %d test (%s binarisation)",
         meta["n_train"], meta["n_valid"], meta["n_test"], params.binarization)
