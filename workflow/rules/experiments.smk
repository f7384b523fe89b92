# Experiments: the table of every run, this study against a baseline, and the sweep figures.


localrules:
    runs,


rule runs:
    input:
        unpack(get_runs_input),
    output:
        tsv=f"{RUNS}/runs.tsv",
        summary=f"{RUNS}/runs_summary.tsv",
        html=f"{RUNS}/runs.html",
    log:
        "logs/runs/runs.log",
    benchmark:
        "benchmarks/runs/runs.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        expected=expected_hashes(),
    script:
        "../scripts/runs_table.py"


rule compare:
    input:
        runs=rules.runs.output.tsv,
    output:
        tsv=f"{COMPARE}/compare.tsv",
        curves=[f"{COMPARE}/curves_{m}.png" for m in configured()],
    log:
        "logs/runs/compare.log",
    benchmark:
        "benchmarks/runs/compare.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        baseline=lambda wildcards: config["compare"]["baseline"],  # text: a function keeps {braces} literal
        models=configured(),
    script:
        "../scripts/compare_studies.py"


rule plot_sweep:
    input:
        summary=rules.runs.output.summary,
    output:
        png=report(
            f"{FIGURES}/sweep_{{model}}_{{key}}.png",
            caption="../report/sweep.rst",
            category="Sweeps",
            labels={"figure": "metrics against {key}", "model": "{model}"},
        ),
        pdf=f"{FIGURES}/sweep_{{model}}_{{key}}.pdf",
    log:
        "logs/plot/{dataset}/sweep_{model}_{key}.log",
    benchmark:
        "benchmarks/plot/{dataset}/sweep_{model}_{key}.tsv"
    wildcard_constraints:
        key=r"[A-Za-z_][A-Za-z0-9_]*",
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/plot_sweep.py"
