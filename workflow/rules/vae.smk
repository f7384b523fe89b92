# VAE: one training job per latent size x seed, test-set evaluation, and its figures.


rule train_vae:
    input:
        splits="results/{dataset}/data/splits.pt",
    output:
        model="results/{dataset}/vae/z{latent}/seed{seed}/model.pt",
        metrics="results/{dataset}/vae/z{latent}/seed{seed}/metrics.csv",
        snapshots="results/{dataset}/vae/z{latent}/seed{seed}/snapshots.pt",
        samples=expand(
            "results/{{dataset}}/vae/z{{latent}}/seed{{seed}}/samples/epoch{epoch:03d}.png",
            epoch=snapshot_epochs("vae", "sample_epochs"),
        ),
    params:
        latent_dim=lambda w: int(w.latent),
        seed=lambda w: int(w.seed),
        hidden_dim=config["vae"]["hidden_dim"],
        epochs=config["vae"]["epochs"],
        batch_size=config["vae"]["batch_size"],
        lr=config["vae"]["lr"],
        sample_epochs=snapshot_epochs("vae", "sample_epochs"),
        snapshot_epochs=sorted(
            set(snapshot_epochs("vae", "sample_epochs") + snapshot_epochs("vae", "manifold_epochs"))
        ),
        sample_mode=config["vae"]["sample_mode"],
        eval_batch_size=config["vae"]["eval_batch_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    log:
        "logs/train/{dataset}/vae/z{latent}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/vae/z{latent}/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_vae.py"


rule evaluate_vae:
    input:
        model=rules.train_vae.output.model,
        splits="results/{dataset}/data/splits.pt",
    output:
        metrics="results/{dataset}/vae/z{latent}/seed{seed}/test_metrics.json",
    params:
        device=config["device"],
        batch_size=config["vae"]["eval_batch_size"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    log:
        "logs/evaluate/{dataset}/vae/z{latent}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate/{dataset}/vae/z{latent}/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_vae.py"


rule plot_vae_elbo:
    input:
        metrics=lambda w: expand(
            "results/{dataset}/vae/z{latent}/seed{seed}/metrics.csv",
            dataset=w.dataset,
            latent=config["vae"]["latent_sizes"],
            seed=config["seeds"],
        ),
    output:
        png=report(
            "results/{dataset}/figures/vae_elbo.png",
            caption="../report/vae_elbo.rst",
            category="VAE",
            subcategory="training curves",
            labels={"figure": "ELBO curves", "latent size": "all", "seed": "all"},
        ),
        pdf="results/{dataset}/figures/vae_elbo.pdf",
    params:
        latent_sizes=config["vae"]["latent_sizes"],
        seeds=config["seeds"],
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/vae_elbo.log",
    benchmark:
        "benchmarks/plot/{dataset}/vae_elbo.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_vae_elbo.py"


rule plot_vae_samples:
    input:
        snapshots=rules.train_vae.output.snapshots,
    output:
        png=report(
            "results/{dataset}/figures/vae_samples_z{latent}_seed{seed}.png",
            caption="../report/vae_samples.rst",
            category="VAE",
            subcategory="samples",
            labels={"figure": "samples over epochs", "latent size": "{latent}", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/vae_samples_z{latent}_seed{seed}.pdf",
    params:
        epochs=snapshot_epochs("vae", "sample_epochs"),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/vae_samples_z{latent}_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/vae_samples_z{latent}_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_vae_samples.py"


rule plot_vae_manifold:
    input:
        snapshots="results/{dataset}/vae/z2/seed{seed}/snapshots.pt",
    output:
        png=report(
            "results/{dataset}/figures/vae_manifold_z2_seed{seed}.png",
            caption="../report/vae_manifold.rst",
            category="VAE",
            subcategory="manifold",
            labels={"figure": "2-D manifold", "latent size": "2", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/vae_manifold_z2_seed{seed}.pdf",
    params:
        epochs=snapshot_epochs("vae", "manifold_epochs"),
        size=config["vae"]["manifold_size"],
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/vae_manifold_z2_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/vae_manifold_z2_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_vae_manifold.py"
