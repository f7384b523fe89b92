# dgm-pipeline: VAE, IWAE, GAN and RealNVP on MNIST, trained, evaluated and reported end to end.
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.current_basedir}/config.yaml"  # the full study; --configfile/--config merge on top


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/vae.smk"
include: "workflow/rules/likelihood.smk"
include: "workflow/rules/ais.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/flow.smk"
include: "workflow/rules/interpolation.smk"
include: "workflow/rules/quality.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),


onstart:
    check_writable(workflow.dag.needrun_jobs())


onsuccess:
    for warning in experiments.run_warnings(log):
        logger.warning(f"warning of a job of this run: {warning}")


onerror:
    for warning in experiments.run_warnings(log):
        logger.warning(f"warning of a job of this run: {warning}")
