"""Rule plot_flow_bpd: train/validation bits per dimension per epoch (seed Fig. 7)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

import pandas as pd  # noqa: E402

from dgm import plotting  # noqa: E402
from dgm.tasks.flow import SEED_VALID_BPD  # noqa: E402

plotting.plot_bpd_curve(pd.read_csv(snakemake.input.metrics), snakemake.output[0], reference=SEED_VALID_BPD,
                        reference_label=f"seed study, 40 epochs ({SEED_VALID_BPD})")
