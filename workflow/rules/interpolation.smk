# Interpolations for every decoder model (dgm.registry capability "decoder"), trained here or not: chained
# walks between prior draws, decoded (the GAN's seed Fig. 6, the flow's Fig. 9), one rule for all.


rule plot_interpolation:
    input:
        model=f"{RUN}/model.pt",
    output:
        png=report(
            f"{POINT_FIGURES}{{model}}_interpolation_z{{latent}}_seed{{seed}}.png",
            caption="../report/interpolation.rst",
            category="{model}",
            subcategory="interpolation",
            labels={"figure": "latent interpolation", "latent size": "{latent}", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}{{model}}_interpolation_z{{latent}}_seed{{seed}}.pdf",
    log:
        plot_log("{model}_interpolation_z{latent}_seed{seed}"),
    benchmark:
        plot_benchmark("{model}_interpolation_z{latent}_seed{seed}")
    wildcard_constraints:
        model=alternatives("decoder"),
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        settings=lambda w: interpolation_settings(w.model),
        seed=lambda w: int(w.seed),
    script:
        "../scripts/plot_interpolation.py"
