"""Rule kl_examples: the seed's section 1.5 KL examples, closed form against Monte Carlo."""
from dgm.entry import start_log

log = start_log(snakemake.log[0])

from dgm.tasks.likelihood import kl_examples  # noqa: E402

for row in kl_examples(output_path=snakemake.output.table, n=snakemake.params.n, seed=snakemake.params.seed):
    log.info("%s", row)
