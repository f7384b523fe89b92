# The study's own report: self-contained HTML and LaTeX source built from this run's results.


rule report:
    input:
        unpack(get_report_inputs),
    output:
        html="results/report/report.html",
        tex="results/report/report.tex",
    params:
        title=config["report"]["title"],
        config=config,
        template_dir=f"{workflow.basedir}/report",
        benchmarks_dir="benchmarks",
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/report/report.tsv"
    conda:
        ENV
    script:
        "../scripts/make_report.py"
