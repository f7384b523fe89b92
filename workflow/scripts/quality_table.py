"""Rule quality_table: every model's FID and Parzen numbers, and the references, as one TSV."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm.tasks.quality import write_table  # noqa: E402

write_table(quality_paths=list(snakemake.input.runs), reference_path=snakemake.input.reference,
            output_path=snakemake.output[0])
