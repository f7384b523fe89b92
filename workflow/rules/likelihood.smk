# Likelihood of every trained VAE (seed sections 1.4-1.7): importance-sampled test NLL, importance
# sampling against naive Monte Carlo over K, a quadrature reference for z = 2, the seed's KL examples.


rule test_nll:
    input:
        model=rules.train_vae.output.model,
        splits="results/{dataset}/data/splits.pt",
    output:
        metrics="results/{dataset}/vae/z{latent}/seed{seed}/test_nll.json",
    params:
        k=config["likelihood"]["k"],
        batch_size=config["likelihood"]["batch_size"],
        chunk_size=config["likelihood"]["chunk_size"],
        seed=config["likelihood"]["seed"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    log:
        "logs/test_nll/{dataset}/vae/z{latent}/seed{seed}.log",
    benchmark:
        "benchmarks/test_nll/{dataset}/vae/z{latent}/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/evaluate_test_nll.py"


rule estimator_sweep:
    input:
        model=rules.train_vae.output.model,
        splits="results/{dataset}/data/splits.pt",
    output:
        sweep="results/{dataset}/vae/z{latent}/seed{seed}/estimator_sweep.csv",
    params:
        ks=config["likelihood"]["sweep_ks"],
        n_images=config["likelihood"]["sweep_images"],
        repeats=config["likelihood"]["sweep_repeats"],
        batch_size=config["likelihood"]["batch_size"],
        chunk_size=config["likelihood"]["chunk_size"],
        seed=config["likelihood"]["seed"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=180,
    log:
        "logs/estimator_sweep/{dataset}/vae/z{latent}/seed{seed}.log",
    benchmark:
        "benchmarks/estimator_sweep/{dataset}/vae/z{latent}/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/estimator_sweep.py"


rule quadrature:
    input:
        model="results/{dataset}/vae/z2/seed{seed}/model.pt",
        splits="results/{dataset}/data/splits.pt",
    output:
        metrics="results/{dataset}/vae/z2/seed{seed}/quadrature.json",
    params:
        n_images=config["likelihood"]["sweep_images"],
        points_per_dim=config["likelihood"]["quadrature"]["points_per_dim"],
        levels=config["likelihood"]["quadrature"]["levels"],
        tol=config["likelihood"]["quadrature"]["tol"],
        max_points_per_dim=config["likelihood"]["quadrature"]["max_points_per_dim"],
        batch_size=config["likelihood"]["quadrature"]["batch_size"],
        chunk_size=config["likelihood"]["quadrature"]["chunk_size"],
        device=config["device"],
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=120,
    log:
        "logs/quadrature/{dataset}/vae/z2/seed{seed}.log",
    benchmark:
        "benchmarks/quadrature/{dataset}/vae/z2/seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/quadrature_log_px.py"


rule kl_examples:
    output:
        table="results/likelihood/kl_examples.csv",
    params:
        n=config["likelihood"]["kl_samples"],
        seed=config["likelihood"]["seed"],
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/kl_examples/kl_examples.log",
    benchmark:
        "benchmarks/kl_examples/kl_examples.tsv"
    conda:
        ENV
    script:
        "../scripts/kl_examples.py"


rule plot_likelihood_sweep:
    input:
        unpack(get_likelihood_sweep_input),
    output:
        png=report(
            "results/{dataset}/figures/likelihood_sweep_seed{seed}.png",
            caption="../report/likelihood_sweep.rst",
            category="Likelihood",
            subcategory="estimators against K",
            labels={"figure": "log p(x) against K", "seed": "{seed}"},
        ),
        pdf="results/{dataset}/figures/likelihood_sweep_seed{seed}.pdf",
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/plot/{dataset}/likelihood_sweep_seed{seed}.log",
    benchmark:
        "benchmarks/plot/{dataset}/likelihood_sweep_seed{seed}.tsv"
    conda:
        ENV
    script:
        "../scripts/plot_likelihood_sweep.py"
