# Sample quality of every trained model: a digit classifier (its features define the FID), the
# real-image references, one scoring job per model run, and the table of all numbers.


rule train_classifier:
    input:
        splits=SPLITS,
    output:
        model=f"{QUALITY}/classifier.pt",
        metrics=f"{QUALITY}/classifier.json",
        curve=f"{QUALITY}/classifier_metrics.csv",
        features=REAL_FEATURES,
    log:
        "logs/quality/{dataset}/train_classifier.log",
    benchmark:
        "benchmarks/quality/{dataset}/train_classifier.tsv"
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=60,
    params:
        cfg=config["quality"]["classifier"],
        eval_batch_size=config["quality"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/train_classifier.py"


rule quality_reference:
    input:
        classifier=rules.train_classifier.output.model,
        classifier_metrics=rules.train_classifier.output.metrics,
        features=rules.train_classifier.output.features,
        splits=SPLITS,
    output:
        f"{QUALITY}/reference.json",
    log:
        "logs/quality/{dataset}/reference.log",
    benchmark:
        "benchmarks/quality/{dataset}/reference.tsv"
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=6000,
        runtime=60,
    params:
        n_samples=config["quality"]["n_samples"],
        sigmas=parzen_sigmas(),
        metrics=config["quality"]["metrics"],
        seed=config["quality"]["sample_seed"],
        batch_size=config["quality"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/quality_reference.py"


rule sample_quality:
    input:
        unpack(get_sample_quality_input),
    output:
        f"{RUN}/quality.json",
    log:
        job_log("quality"),
    benchmark:
        job_benchmark("quality")
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=6000,
        runtime=120,
    params:
        n_samples=config["quality"]["n_samples"],
        sigmas=parzen_sigmas(),
        metrics=config["quality"]["metrics"],
        seed=config["quality"]["sample_seed"],
        snapshot_epochs=lambda w: quality_snapshot_epochs(w.model),
        batch_size=config["quality"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/sample_quality.py"


rule quality_table:
    input:
        runs=lambda w: get_run_files("quality.json", w.dataset),
        reference=rules.quality_reference.output[0],
    output:
        report(
            f"{QUALITY}/sample_quality.tsv",
            caption="../report/sample_quality.rst",
            category="Sample quality",
            labels={"table": "FID, KID, precision/recall, density/coverage and Parzen per model and epoch"},
        ),
    log:
        "logs/quality/{dataset}/table.log",
    benchmark:
        "benchmarks/quality/{dataset}/table.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/quality_table.py"


rule plot_quality_sample_size:
    input:
        runs=lambda w: get_run_files("quality.json", w.dataset),
    output:
        png=report(
            f"{FIGURES}/quality_sample_size.png",
            caption="../report/quality_sample_size.rst",
            category="Sample quality",
            labels={"figure": "FID and KID against the sample size"},
        ),
        pdf=f"{FIGURES}/quality_sample_size.pdf",
    log:
        "logs/quality/{dataset}/sample_size.log",
    benchmark:
        "benchmarks/quality/{dataset}/sample_size.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/plot_quality_sample_size.py"


rule memorisation:
    input:
        model=f"{RUN}/model.pt",
        classifier=f"{QUALITY}/classifier.pt",
        features=REAL_FEATURES,
        splits=SPLITS,
    output:
        metrics=f"{RUN}/memorisation.json",
        png=report(
            f"{POINT_FIGURES}memorisation_{{model}}_z{{latent}}_seed{{seed}}.png",
            caption="../report/memorisation.rst",
            category="Sample quality",
            subcategory="memorisation",
            labels={"figure": "samples nearest the training set", "model": "{model}", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}memorisation_{{model}}_z{{latent}}_seed{{seed}}.pdf",
    log:
        job_log("memorisation"),
    benchmark:
        job_benchmark("memorisation")
    wildcard_constraints:
        model=alternatives("sampler"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=6000,
        runtime=60,
    params:
        n_samples=config["quality"]["n_samples"],
        seed=config["quality"]["sample_seed"],
        batch_size=config["quality"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/memorisation.py"
