# Likelihood of every model by capability (dgm.registry), trained here or brought by a user (external.smk):
# the test-set ELBO of latent-variable models and the exact (or dequantisation-bound) test log-likelihood of
# density models; for latent-variable models (seed sections 1.4-1.7) the importance-sampled test NLL, importance
# sampling against naive Monte Carlo over K and a quadrature reference for z = 2; the seed's KL examples.


rule evaluate_elbo:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
    output:
        metrics=f"{RUN}/test_metrics.json",
        per_image=f"{RUN}/test_metrics.npz",
    log:
        job_log("evaluate"),
    benchmark:
        job_benchmark("evaluate")
    wildcard_constraints:
        model=alternatives("bound"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=60,
    params:
        device=config["device"],
        batch_size=lambda w: model_section(w.model)["eval_batch_size"],
    script:
        "../scripts/evaluate_vae.py"


rule evaluate_density:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
    output:
        metrics=f"{RUN}/test_metrics.json",
        per_image=f"{RUN}/test_metrics.npz",
    log:
        job_log("evaluate"),
    benchmark:
        job_benchmark("evaluate")
    wildcard_constraints:
        model=alternatives("density"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=60,
    params:
        k=lambda w: model_section(w.model)["eval_k"],
        seed=lambda w: int(w.seed),
        device=config["device"],
        batch_size=lambda w: model_section(w.model)["eval_batch_size"],
    script:
        "../scripts/evaluate_density.py"


rule test_nll:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
    output:
        metrics=f"{RUN}/test_nll.json",
        per_image=f"{RUN}/test_nll.npz",
    log:
        job_log("test_nll"),
    benchmark:
        job_benchmark("test_nll")
    wildcard_constraints:
        model=alternatives("latent_variable"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=120,
    params:
        k=config["likelihood"]["k"],
        batch_size=config["likelihood"]["batch_size"],
        chunk_size=config["likelihood"]["chunk_size"],
        seed=config["likelihood"]["seed"],
        device=config["device"],
    script:
        "../scripts/evaluate_test_nll.py"


rule estimator_sweep:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
    output:
        sweep=f"{RUN}/estimator_sweep.csv",
        per_image=f"{RUN}/estimator_sweep.npz",
    log:
        job_log("estimator_sweep"),
    benchmark:
        job_benchmark("estimator_sweep")
    wildcard_constraints:
        model=alternatives("latent_variable"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=180,
    params:
        ks=config["likelihood"]["sweep_ks"],
        n_images=config["likelihood"]["sweep_images"],
        repeats=config["likelihood"]["sweep_repeats"],
        batch_size=config["likelihood"]["batch_size"],
        chunk_size=config["likelihood"]["chunk_size"],
        seed=config["likelihood"]["seed"],
        device=config["device"],
    script:
        "../scripts/estimator_sweep.py"


rule quadrature:
    input:
        model=run_file("model.pt", latent=2),
        splits=SPLITS,
    output:
        metrics=run_file("quadrature.json", latent=2),
        per_image=run_file("quadrature.npz", latent=2),
    log:
        "logs/quadrature/{dataset}/{model}/{point}z2/seed{seed}.log",
    benchmark:
        "benchmarks/quadrature/{dataset}/{model}/{point}z2/seed{seed}.tsv"
    wildcard_constraints:
        model=alternatives("latent_variable"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=120,
    params:
        n_images=config["likelihood"]["sweep_images"],
        points_per_dim=config["likelihood"]["quadrature"]["points_per_dim"],
        levels=config["likelihood"]["quadrature"]["levels"],
        tol=config["likelihood"]["quadrature"]["tol"],
        max_points_per_dim=config["likelihood"]["quadrature"]["max_points_per_dim"],
        batch_size=config["likelihood"]["quadrature"]["batch_size"],
        chunk_size=config["likelihood"]["quadrature"]["chunk_size"],
        device=config["device"],
    script:
        "../scripts/quadrature_log_px.py"


rule generalisation_gap:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
    output:
        metrics=f"{RUN}/generalisation.json",
        per_image=f"{RUN}/generalisation.npz",
    log:
        job_log("generalisation_gap"),
    benchmark:
        job_benchmark("generalisation_gap")
    wildcard_constraints:
        model=alternatives("likelihood"),
    conda:
        ENV
    threads: TORCH_THREADS
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=120,
    params:
        n_images=config["likelihood"]["sweep_images"],
        k=lambda w: (
            config["likelihood"]["k"] if registry.get(w.model).latent_variable else model_section(w.model)["eval_k"]
        ),
        batch_size=config["likelihood"]["batch_size"],
        chunk_size=config["likelihood"]["chunk_size"],
        seed=config["likelihood"]["seed"],
        binarize_seed=config["data"]["binarize_seed"] + 1,
        device=config["device"],
    script:
        "../scripts/generalisation_gap.py"


rule kl_examples:
    output:
        table="results/likelihood/kl_examples.csv",
    log:
        "logs/kl_examples/kl_examples.log",
    benchmark:
        "benchmarks/kl_examples/kl_examples.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        n=config["likelihood"]["kl_samples"],
        seed=config["likelihood"]["seed"],
    script:
        "../scripts/kl_examples.py"


rule plot_likelihood_sweep:
    input:
        unpack(get_likelihood_sweep_input),
    output:
        png=report(
            f"{POINT_FIGURES}likelihood_sweep_{{model}}_seed{{seed}}.png",
            caption="../report/likelihood_sweep.rst",
            category="Likelihood",
            subcategory="estimators against K",
            labels={"figure": "log p(x) against K", "model": "{model}", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}likelihood_sweep_{{model}}_seed{{seed}}.pdf",
    log:
        plot_log("likelihood_sweep_{model}_seed{seed}"),
    benchmark:
        plot_benchmark("likelihood_sweep_{model}_seed{seed}")
    wildcard_constraints:
        model=alternatives("latent_variable"),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/plot_likelihood_sweep.py"


rule plot_latent_gap:
    input:
        sweeps=get_latent_gap_input,
    output:
        csv=f"results/{{dataset}}/likelihood/{{point}}latent_gap_{{model}}.csv",
        png=report(
            f"{POINT_FIGURES}likelihood_gap_{{model}}.png",
            caption="../report/likelihood_gap.rst",
            category="Likelihood",
            subcategory="naive MC against the latent size",
            labels={"figure": "log p(x) against the latent size", "model": "{model}", "seed": "all"},
        ),
        pdf=f"{POINT_FIGURES}likelihood_gap_{{model}}.pdf",
    log:
        plot_log("likelihood_gap_{model}"),
    benchmark:
        plot_benchmark("likelihood_gap_{model}")
    wildcard_constraints:
        model=alternatives("latent_variable"),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        k=max(config["likelihood"]["sweep_ks"]),
        title=lambda w: f"{registry.get(w.model).title}: naive Monte Carlo against importance sampling",
    script:
        "../scripts/plot_latent_gap.py"
