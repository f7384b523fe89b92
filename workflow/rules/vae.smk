# The figures of every trained latent-variable model of the registry (dgm.registry: the VAE, the IWAE, ...)
# through {model}: ELBO curves, samples over epochs, the 2-d manifold. Training: training.smk; evaluation:
# likelihood.smk.


rule plot_elbo:
    input:
        metrics=curve_input(),
    output:
        png=report(
            f"{POINT_FIGURES}{{model}}_elbo.png",
            caption="../report/vae_elbo.rst",
            category="{model}",
            subcategory="training curves",
            labels={"figure": "ELBO curves", "latent size": "all", "seed": "all"},
        ),
        pdf=f"{POINT_FIGURES}{{model}}_elbo.pdf",
    log:
        plot_log("{model}_elbo"),
    benchmark:
        plot_benchmark("{model}_elbo")
    wildcard_constraints:
        model=alternatives("latent_variable", "trained"),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/plot_vae_elbo.py"


rule plot_latent_samples:
    input:
        snapshots=f"{RUN}/snapshots.pt",
    output:
        png=report(
            f"{POINT_FIGURES}{{model}}_samples_z{{latent}}_seed{{seed}}.png",
            caption="../report/vae_samples.rst",
            category="{model}",
            subcategory="samples",
            labels={"figure": "samples over epochs", "latent size": "{latent}", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}{{model}}_samples_z{{latent}}_seed{{seed}}.pdf",
    log:
        plot_log("{model}_samples_z{latent}_seed{seed}"),
    benchmark:
        plot_benchmark("{model}_samples_z{latent}_seed{seed}")
    wildcard_constraints:
        model=alternatives("latent_variable", "trained"),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        epochs=lambda w: snapshot_epochs(w.model, "sample_epochs"),
        title=lambda w: registry.get(w.model).title,
    script:
        "../scripts/plot_vae_samples.py"


rule plot_manifold:
    input:
        model=run_file("model.pt", latent=2),
        snapshots=run_file("snapshots.pt", latent=2),
    output:
        png=report(
            f"{POINT_FIGURES}{{model}}_manifold_z2_seed{{seed}}.png",
            caption="../report/vae_manifold.rst",
            category="{model}",
            subcategory="manifold",
            labels={"figure": "2-D manifold", "latent size": "2", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}{{model}}_manifold_z2_seed{{seed}}.pdf",
    log:
        plot_log("{model}_manifold_z2_seed{seed}"),
    benchmark:
        plot_benchmark("{model}_manifold_z2_seed{seed}")
    wildcard_constraints:
        model=alternatives("latent_variable", "trained"),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        epochs=lambda w: snapshot_epochs(w.model, "manifold_epochs"),
        size=lambda w: config[w.model]["manifold_size"],
    script:
        "../scripts/plot_vae_manifold.py"
