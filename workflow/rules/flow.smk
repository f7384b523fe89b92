# RealNVP flow: one training job per seed (its latent has the data's 784 dimensions, hence z784),
# test-set bits/dim, and its figures.


rule train_flow:
    input:
        splits="results/{dataset}/data/splits.pt",
    output:
        model="results/{dataset}/flow/z784/seed{seed}/model.pt",
        metrics="results/{dataset}/flow/z784/seed{seed}/metrics.csv",
        snapshots="results/{dataset}/flow/z784/seed{seed}/snapshots.pt",
        samples=expand(
            "results/{{dataset}}/flow/z784/seed{{seed}}/samples/epoch{epoch:03d}.png",
            epoch=snapshot_epochs("flow", "sample_epochs"),
        ),
    params:
        seed=lambda w: int(w.seed),
        n_blocks=config["flow"]["n_blocks"],
        hidden_dim=config["flow"]["hidden_dim"],
        alpha=config["flow"]["alpha"],
        learned_scale=config["flow"]["learned_scale"],
        epochs=config["flow"]["epochs"],
        batch_size=config["flow"]["batch_size"],
        lr=config["flow"]["lr"],
        grad_clip=config["flow"]["grad_clip"],
        sample_epochs=snapshot_epochs("flow", "sample_epochs"),
        eval_batch_size=config["flow"]["eval_batch_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=480,
    log:
        "logs/train/{dataset}/flow/z784/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/flow/z784/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_flow.py"


rule evaluate_flow:
    input:
        model=rules.train_flow.output.model,
        splits="results/{dataset}/data/splits.pt",
    output:
        metrics="results/{dataset}/flow/z784/seed{seed}/test_metrics.json",
    params:
        k=config["flow"]["eval_k"],
        seed=lambda w: int(w.seed),
        device=config["device"],
        batch_size=config["flow"]["eval_batch_size"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    log:
        "logs/evaluate/{dataset}/flow/z784/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{dataset}/flow/z784/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_flow.py"


rule plot_flow_bpd:
    input:
        metrics=lambda w: expand(
            "results/{dataset}/flow/z784/seed{seed}/metrics.csv", dataset=w.dataset, seed=config["seeds"]
        ),
    output:
        png=report(
            "results/{dataset}/figures/flow_bpd.png",
            caption="../report/flow_bpd.rst",
            category="Flow",
            subcategory="training curves",
            labels={"figure": "bits/dim curves", "seed": "all"},
        ),
        pdf="results/{dataset}/figures/flow_bpd.pdf",
    params:
        seeds=config["seeds"],
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/flow_bpd.log",
    benchmark:
        "benchmarks/plot/{dataset}/flow_bpd.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_flow_bpd.py"


rule plot_flow_samples:
    input:
        snapshots=rules.train_flow.output.snapshots,
    output:
        png=report(
            "results/{dataset}/figures/flow_samples_seed{seed}.png",
            caption="../report/flow_samples.rst",
            category="Flow",
            subcategory="samples",
            labels={"figure": "samples over epochs", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/flow_samples_seed{seed}.pdf",
    params:
        epochs=snapshot_epochs("flow", "sample_epochs"),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/flow_samples_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/flow_samples_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_flow_samples.py"


rule plot_flow_interpolation:
    input:
        model=rules.train_flow.output.model,
    output:
        png=report(
            "results/{dataset}/figures/flow_interpolation_seed{seed}.png",
            caption="../report/flow_interpolation.rst",
            category="Flow",
            subcategory="interpolation",
            labels={"figure": "latent interpolation", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/flow_interpolation_seed{seed}.pdf",
    params:
        rows=config["flow"]["interpolation_rows"],
        steps=config["flow"]["interpolation_steps"],
        method=config["flow"]["interpolation_method"],
        seed=lambda w: int(w.seed),
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/plot/{dataset}/flow_interpolation_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/flow_interpolation_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_flow_interpolation.py"
