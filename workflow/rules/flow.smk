# RealNVP flow: its own figures (its latent has the data's 784 dimensions, hence z784). Its training rule:
# training.smk; its test-set bits/dim: rule evaluate_density, likelihood.smk; its interpolations (Fig. 9):
# interpolation.smk.

FLOW_LATENT = registry.get("flow").fixed_latent
MODEL_FIGURES["flow"] = lambda seeds, point: [f"{POINT_FIGURES}flow_bpd.png".format(dataset=DATASET, point=point)] + [
    f"{POINT_FIGURES}flow_{fig}_seed{s}.png".format(dataset=DATASET, point=point) for s in seeds for fig in ("samples",)
]


rule plot_flow_bpd:
    input:
        metrics=curve_input("flow"),
    output:
        png=report(
            f"{POINT_FIGURES}flow_bpd.png",
            caption="../report/flow_bpd.rst",
            category="Flow",
            subcategory="training curves",
            labels={"figure": "bits/dim curves", "seed": "all"},
        ),
        pdf=f"{POINT_FIGURES}flow_bpd.pdf",
    log:
        plot_log("flow_bpd"),
    benchmark:
        plot_benchmark("flow_bpd")
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seeds=config["seeds"],
    script:
        "../scripts/plot_flow_bpd.py"


rule plot_flow_samples:
    input:
        snapshots=rules.train_flow.output.snapshots,
    output:
        png=report(
            f"{POINT_FIGURES}flow_samples_seed{{seed}}.png",
            caption="../report/flow_samples.rst",
            category="Flow",
            subcategory="samples",
            labels={"figure": "samples over epochs", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}flow_samples_seed{{seed}}.pdf",
    log:
        plot_log("flow_samples_seed{seed}"),
    benchmark:
        plot_benchmark("flow_samples_seed{seed}")
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        epochs=snapshot_epochs("flow", "sample_epochs"),
    script:
        "../scripts/plot_flow_samples.py"
