"""Rule download_mnist: the four IDX files, from torchvision's mirrors or from data.raw_dir."""
from dgm.entry import start_log, write_json

log = start_log(snakemake.log[0])
dataset = snakemake.wildcards.dataset
raw_dir = snakemake.params.raw_dir
out = snakemake.output

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from dgm import data  # noqa: E402

outputs = {
    "train_images": out.images_train,
    "train_labels": out.labels_train,
    "test_images": out.images_test,
    "test_labels": out.labels_test,
}
if raw_dir:
    log.info("taking %s IDX files from %s (no network)", dataset, raw_dir)
    files = data.find_raw_files(raw_dir)
    record = data.describe_local(dataset, files)
    data.write_uncompressed(files, outputs)
else:
    with tempfile.TemporaryDirectory(dir=Path(out.checksums).parent) as tmp:
        record = data.download(dataset, tmp, log=log.info)
        data.write_uncompressed({k: v["path"] for k, v in record.items()}, outputs)
for key, entry in record.items():
    log.info("%s: md5 %s (%s)%s", key, entry["md5"], entry["source"],
             "" if entry["official_md5"] else " -- not torchvision's official file")
write_json({"dataset": dataset, "files": record}, out.checksums)
