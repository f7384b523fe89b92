# The study as a document: `snakemake report` builds report.html (self-contained), report.tex
# (with its figures beside it) and report.pdf (latexmk's auxiliary files in build/), all from this
# run's results. The text is in report/ (templates) and workflow/report/ (figure captions).


localrules:
    report,


rule report_documents:
    input:
        unpack(get_report_inputs),
    output:
        html=f"{REPORT}/report.html",
        tex=f"{REPORT}/report.tex",
    log:
        "logs/report/report_documents.log",
    benchmark:
        "benchmarks/report/report_documents.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        title=lambda wildcards: config["report"]["title"],  # text: a function keeps {braces} literal
        config=config,
        template_dir=f"{REPO_DIR}/report",
        caption_dir=f"{REPO_DIR}/workflow/report",  # the figures' captions, as in Snakemake's report
        benchmarks_dir="benchmarks",
    script:
        "../scripts/make_report.py"


rule report_pdf:
    input:
        tex=rules.report_documents.output.tex,
    output:
        pdf=f"{REPORT}/report.pdf",
    log:
        "logs/report/report_pdf.log",
    benchmark:
        "benchmarks/report/report_pdf.tsv"
    conda:
        ENV
    resources:
        mem_mb=1000,
        runtime=15,
    script:
        "../scripts/make_report_pdf.py"


rule report:
    input:
        get_report_documents(),
