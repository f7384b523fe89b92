"""One function per rule: what a workflow script calls after unpacking ``snakemake.*``."""
