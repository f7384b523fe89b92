# Data: fetch (or stage from data.raw_dir) the four IDX files, then split and binarise once.


localrules:
    download_mnist,


rule download_mnist:
    output:
        images_train="results/{dataset}/raw/train-images-idx3-ubyte",
        labels_train="results/{dataset}/raw/train-labels-idx1-ubyte",
        images_test="results/{dataset}/raw/t10k-images-idx3-ubyte",
        labels_test="results/{dataset}/raw/t10k-labels-idx1-ubyte",
        checksums="results/{dataset}/raw/checksums.json",
    params:
        raw_dir=config["data"]["raw_dir"],
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        "logs/download_mnist/{dataset}.log",
    benchmark:
        "benchmarks/download_mnist/{dataset}.tsv"
    conda:
        ENV
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
        splits="results/{dataset}/data/splits.pt",
        summary="results/{dataset}/data/splits.json",
    params:
        valid_size=config["data"]["valid_size"],
        split_seed=config["data"]["split_seed"],
        binarize_seed=config["data"]["binarize_seed"],
        binarization=config["data"]["binarization"],
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/prepare_mnist/{dataset}.log",
    benchmark:
        "benchmarks/prepare_mnist/{dataset}.tsv"
    conda:
        ENV
    script:
        "../scripts/prepare_mnist.py"
