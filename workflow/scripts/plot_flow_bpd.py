"""Rule plot_flow_bpd: train/validation bits per dimension per epoch, over the seeds (seed Fig. 7)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

from dgm import plotting  # noqa: E402
from dgm.results import metrics_by_latent  # noqa: E402
from dgm.seed_study import FLOW_VALID_BPD  # noqa: E402

(frames,) = metrics_by_latent(snakemake.input.metrics).values()
plotting.plot_bpd_curve(frames, snakemake.output.png, reference=FLOW_VALID_BPD,
                        reference_label=f"seed study, 40 epochs ({FLOW_VALID_BPD})")
