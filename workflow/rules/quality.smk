# Sample quality of every trained model: a digit classifier (its features define the FID), the
# real-image references, one scoring job per model run, and the table of all numbers.


rule train_classifier:
    input:
        splits="results/{dataset}/data/splits.pt",
    output:
        model="results/{dataset}/quality/classifier.pt",
        metrics="results/{dataset}/quality/classifier.json",
    params:
        epochs=config["quality"]["classifier"]["epochs"],
        batch_size=config["quality"]["classifier"]["batch_size"],
        lr=config["quality"]["classifier"]["lr"],
        seed=config["quality"]["classifier"]["seed"],
        eval_batch_size=config["quality"]["batch_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    log:
        "logs/quality/{dataset}/train_classifier.log",
    benchmark:
        "benchmarks/quality/{dataset}/train_classifier.tsv"
    conda:
        ENV
    script:
        "../scripts/train_classifier.py"


rule quality_reference:
    input:
        classifier=rules.train_classifier.output.model,
        classifier_metrics=rules.train_classifier.output.metrics,
        splits="results/{dataset}/data/splits.pt",
    output:
        "results/{dataset}/quality/reference.json",
    params:
        n_samples=config["quality"]["n_samples"],
        sigmas=parzen_sigmas(),
        seed=config["quality"]["sample_seed"],
        batch_size=config["quality"]["batch_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=60,
    log:
        "logs/quality/{dataset}/reference.log",
    benchmark:
        "benchmarks/quality/{dataset}/reference.tsv"
    conda:
        ENV
    script:
        "../scripts/quality_reference.py"


rule sample_quality:
    input:
        unpack(get_sample_quality_input),
    output:
        "results/{dataset}/{model}/z{latent}/seed{seed}/quality.json",
    params:
        n_samples=config["quality"]["n_samples"],
        sigmas=parzen_sigmas(),
        seed=config["quality"]["sample_seed"],
        snapshot_epochs=lambda w: quality_snapshot_epochs(w.model),
        batch_size=config["quality"]["batch_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=120,
    log:
        "logs/quality/{dataset}/{model}/z{latent}/seed{seed}.log",
    benchmark:
        "benchmarks/quality/{dataset}/{model}/z{latent}/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/sample_quality.py"


rule quality_table:
    input:
        runs=lambda w: get_run_files("quality.json", w.dataset),
        reference=rules.quality_reference.output[0],
    output:
        report(
            "results/{dataset}/quality/sample_quality.tsv",
            caption="../report/sample_quality.rst",
            category="Sample quality",
            labels={"table": "FID and Parzen per model and epoch"},
        ),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/quality/{dataset}/table.log",
    benchmark:
        "benchmarks/quality/{dataset}/table.tsv"
    conda:
        ENV
    script:
        "../scripts/quality_table.py"
