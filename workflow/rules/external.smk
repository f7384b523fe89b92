# Models the pipeline did not train (config external, dgm.external): each enters through one import job that
# loads it, checks its verbs on test images and writes the model file, run.json and conformance.json that
# every evaluation rule (likelihood.smk, ais.smk, quality.smk) reads by capability, as for a trained model.


rule import_model:
    input:
        splits=SPLITS,
        source=lambda w: model_section(w.model).get("checkpoint") or model_section(w.model)["samples"],
    output:
        model=f"{RUN}/model.pt",
        record=f"{RUN}/{experiments.RUN_RECORD}",
        conformance=f"{RUN}/conformance.json",
    log:
        job_log("import"),
    benchmark:
        job_benchmark("import")
    wildcard_constraints:
        model=alternatives("external"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=30,
    params:
        name=lambda w: w.model,
        entry=lambda w: model_section(w.model),
        run_config=lambda w: run_config(w.model, w.point, int(w.latent), int(w.seed)),
        n_samples=config["quality"]["n_samples"],
        device=config["device"],
    script:
        "../scripts/import_model.py"


rule plot_model_samples:
    input:
        model=f"{RUN}/model.pt",
    output:
        png=report(
            f"{POINT_FIGURES}{{model}}_samples_z{{latent}}_seed{{seed}}.png",
            caption="../report/external_samples.rst",
            category="{model}",
            subcategory="samples",
            labels={"figure": "samples", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}{{model}}_samples_z{{latent}}_seed{{seed}}.pdf",
    log:
        plot_log("{model}_samples_z{latent}_seed{seed}"),
    benchmark:
        plot_benchmark("{model}_samples_z{latent}_seed{seed}")
    wildcard_constraints:
        model=alternatives("external", "sampler"),
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        seed=lambda w: int(w.seed),
    script:
        "../scripts/plot_model_samples.py"
