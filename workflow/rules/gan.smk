# GAN: its own figures (seed Fig. 4-5); its training rule: training.smk; its interpolations (Fig. 6):
# interpolation.smk.

MODEL_FIGURES["gan"] = lambda seeds, point: [f"{POINT_FIGURES}gan_curves.png".format(dataset=DATASET, point=point)] + [
    f"{POINT_FIGURES}gan_{fig}_z{z}_seed{s}.png".format(dataset=DATASET, point=point)
    for z in latent_sizes("gan")
    for s in seeds
    for fig in ("samples",)
]


rule plot_gan_curves:
    input:
        metrics=curve_input("gan"),
    output:
        png=report(
            f"{POINT_FIGURES}gan_curves.png",
            caption="../report/gan_curves.rst",
            category="GAN",
            subcategory="training curves",
            labels={"figure": "losses and D outputs", "latent size": "all", "seed": "all"},
        ),
        pdf=f"{POINT_FIGURES}gan_curves.pdf",
    log:
        plot_log("gan_curves"),
    benchmark:
        plot_benchmark("gan_curves")
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        latent_sizes=config["gan"]["latent_sizes"],
        seeds=config["seeds"],
    script:
        "../scripts/plot_gan_curves.py"


rule plot_gan_samples:
    input:
        snapshots=rules.train_gan.output.snapshots,
    output:
        png=report(
            f"{POINT_FIGURES}gan_samples_z{{latent}}_seed{{seed}}.png",
            caption="../report/gan_samples.rst",
            category="GAN",
            subcategory="samples",
            labels={"figure": "samples over epochs", "latent size": "{latent}", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}gan_samples_z{{latent}}_seed{{seed}}.pdf",
    log:
        plot_log("gan_samples_z{latent}_seed{seed}"),
    benchmark:
        plot_benchmark("gan_samples_z{latent}_seed{seed}")
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        epochs=snapshot_epochs("gan", "sample_epochs"),
    script:
        "../scripts/plot_gan_samples.py"
