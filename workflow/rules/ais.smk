# A likelihood for every decoder model (dgm.registry capability decoder_likelihood): annealed
# importance sampling with HMC and its check by bidirectional Monte Carlo (Wu et al., ICLR 2017).


rule ais_sigma:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
    output:
        sigma=f"{RUN}/ais_sigma.json",
    log:
        job_log("ais_sigma"),
    benchmark:
        job_benchmark("ais_sigma")
    wildcard_constraints:
        model=alternatives("decoder_likelihood"),
    conda:
        ENV
    threads: 1  # AIS's many small steps run best on one thread per job (dgm.tasks.ais)
    resources:
        gpu=GPU_JOB,
        mem_mb=3000,
        runtime=60,
    params:
        cfg=config["likelihood"]["ais"],
        device=config["device"],
    script:
        "../scripts/ais_sigma.py"


rule ais:
    input:
        model=f"{RUN}/model.pt",
        splits=SPLITS,
        sigma=rules.ais_sigma.output.sigma,
    output:
        metrics=f"{RUN}/ais.json",
        sweep=f"{RUN}/ais_sweep.csv",
        per_image=f"{RUN}/ais.npz",
    log:
        job_log("ais"),
    benchmark:
        job_benchmark("ais")
    wildcard_constraints:
        model=alternatives("decoder_likelihood"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU_JOB,
        mem_mb=4000,
        runtime=240,
    params:
        cfg=config["likelihood"]["ais"],
        k=config["likelihood"]["k"],
        quadrature=config["likelihood"]["quadrature"],
        device=config["device"],
    script:
        "../scripts/ais.py"


rule bdmc:
    input:
        model=f"{RUN}/model.pt",
        sigma=rules.ais_sigma.output.sigma,
    output:
        metrics=f"{RUN}/bdmc.json",
    log:
        job_log("bdmc"),
    benchmark:
        job_benchmark("bdmc")
    wildcard_constraints:
        model=alternatives("decoder_likelihood"),
    conda:
        ENV
    threads: 1
    resources:
        gpu=GPU_JOB,
        mem_mb=3000,
        runtime=240,
    params:
        cfg=config["likelihood"]["ais"],
        device=config["device"],
    script:
        "../scripts/bdmc.py"


rule plot_ais_sweep:
    input:
        sweeps=ais_sweep_input,
    output:
        png=report(
            f"{POINT_FIGURES}ais_sweep_{{model}}_seed{{seed}}.png",
            caption="../report/ais_sweep.rst",
            category="Likelihood",
            subcategory="AIS against intermediate distributions",
            labels={"figure": "AIS log p(x) against steps", "model": "{model}", "seed": "{seed}"},
        ),
        pdf=f"{POINT_FIGURES}ais_sweep_{{model}}_seed{{seed}}.pdf",
    log:
        plot_log("ais_sweep_{model}_seed{seed}"),
    benchmark:
        plot_benchmark("ais_sweep_{model}_seed{seed}")
    wildcard_constraints:
        model=alternatives("decoder_likelihood"),
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        title=lambda w: registry.get(w.model).title,
    script:
        "../scripts/plot_ais_sweep.py"
