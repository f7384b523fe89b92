# Data: fetch (or stage from data.raw_dir) the four IDX files, then split and binarise once.


localrules:
    download_mnist,


rule download_mnist:
    input:
        unpack(get_raw_files),
    output:
        images_train=f"{RAW}/train-images-idx3-ubyte",
        labels_train=f"{RAW}/train-labels-idx1-ubyte",
        images_test=f"{RAW}/t10k-images-idx3-ubyte",
        labels_test=f"{RAW}/t10k-labels-idx1-ubyte",
        checksums=f"{RAW}/checksums.json",
    log:
        "logs/download_mnist/{dataset}.log",
    benchmark:
        "benchmarks/download_mnist/{dataset}.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        raw_dir=lambda wildcards: config["data"]["raw_dir"],  # text: a function keeps {braces} literal
    script:
        "../scripts/download_mnist.py"


rule prepare_mnist:
    input:
        images_train=rules.download_mnist.output.images_train,
        labels_train=rules.download_mnist.output.labels_train,
        images_test=rules.download_mnist.output.images_test,
        labels_test=rules.download_mnist.output.labels_test,
        checksums=rules.download_mnist.output.checksums,
    output:
        splits=SPLITS,
        summary=SPLITS_SUMMARY,
    log:
        "logs/prepare_mnist/{dataset}.log",
    benchmark:
        "benchmarks/prepare_mnist/{dataset}.tsv"
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        valid_size=config["data"]["valid_size"],
        split_seed=config["data"]["split_seed"],
        binarize_seed=config["data"]["binarize_seed"],
        binarization=config["data"]["binarization"],
    script:
        "../scripts/prepare_mnist.py"
