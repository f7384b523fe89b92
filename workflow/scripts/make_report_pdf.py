"""Rule report_pdf: report.tex -> report.pdf with latexmk."""
from dgm.entry import start_log

log = start_log(snakemake.log[0])

from dgm.tasks.latex import compile_pdf, pdf_page_count  # noqa: E402

pdf = compile_pdf(snakemake.input.tex, snakemake.output.pdf)
log.info("wrote %s (%d pages)", pdf, pdf_page_count(pdf))
