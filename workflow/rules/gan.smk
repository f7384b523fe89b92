# GAN: one training job per latent size x seed, and its figures (seed Fig. 4-6).


rule train_gan:
    input:
        splits="results/{dataset}/data/splits.pt",
    output:
        model="results/{dataset}/gan/z{latent}/seed{seed}/model.pt",
        metrics="results/{dataset}/gan/z{latent}/seed{seed}/metrics.csv",
        snapshots="results/{dataset}/gan/z{latent}/seed{seed}/snapshots.pt",
        samples=expand(
            "results/{{dataset}}/gan/z{{latent}}/seed{{seed}}/samples/epoch{epoch:03d}.png",
            epoch=snapshot_epochs("gan", "sample_epochs"),
        ),
    params:
        latent_dim=lambda w: int(w.latent),
        seed=lambda w: int(w.seed),
        hidden_dim=config["gan"]["hidden_dim"],
        epochs=config["gan"]["epochs"],
        batch_size=config["gan"]["batch_size"],
        lr=config["gan"]["lr"],
        betas=config["gan"]["betas"],
        sample_epochs=snapshot_epochs("gan", "sample_epochs"),
        snapshot_epochs=sorted(set(snapshot_epochs("gan", "sample_epochs") + quality_snapshot_epochs("gan"))),
        eval_batch_size=config["gan"]["eval_batch_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=480,
    log:
        "logs/train/{dataset}/gan/z{latent}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/gan/z{latent}/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/train_gan.py"


rule plot_gan_curves:
    input:
        metrics=lambda w: expand(
            "results/{dataset}/gan/z{latent}/seed{seed}/metrics.csv",
            dataset=w.dataset,
            latent=config["gan"]["latent_sizes"],
            seed=config["seeds"],
        ),
    output:
        png=report(
            "results/{dataset}/figures/gan_curves.png",
            caption="../report/gan_curves.rst",
            category="GAN",
            subcategory="training curves",
            labels={"figure": "losses and D outputs", "latent size": "all", "seed": "all"},
        ),
        pdf="results/{dataset}/figures/gan_curves.pdf",
    params:
        latent_sizes=config["gan"]["latent_sizes"],
        seeds=config["seeds"],
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/gan_curves.log",
    benchmark:
        "benchmarks/plot/{dataset}/gan_curves.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_gan_curves.py"


rule plot_gan_samples:
    input:
        snapshots=rules.train_gan.output.snapshots,
    output:
        png=report(
            "results/{dataset}/figures/gan_samples_z{latent}_seed{seed}.png",
            caption="../report/gan_samples.rst",
            category="GAN",
            subcategory="samples",
            labels={"figure": "samples over epochs", "latent size": "{latent}", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/gan_samples_z{latent}_seed{seed}.pdf",
    params:
        epochs=snapshot_epochs("gan", "sample_epochs"),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/gan_samples_z{latent}_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/gan_samples_z{latent}_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_gan_samples.py"


rule plot_gan_interpolation:
    input:
        model=rules.train_gan.output.model,
    output:
        png=report(
            "results/{dataset}/figures/gan_interpolation_z{latent}_seed{seed}.png",
            caption="../report/gan_interpolation.rst",
            category="GAN",
            subcategory="interpolation",
            labels={"figure": "latent interpolation", "latent size": "{latent}", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/gan_interpolation_z{latent}_seed{seed}.pdf",
    params:
        rows=config["gan"]["interpolation_rows"],
        steps=config["gan"]["interpolation_steps"],
        methods=config["gan"]["interpolation_methods"],
        seed=lambda w: int(w.seed),
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/gan_interpolation_z{latent}_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/gan_interpolation_z{latent}_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_gan_interpolation.py"
