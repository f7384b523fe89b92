"""Rule plot_flow_samples: 16 flow samples at each configured epoch (seed Fig. 8)."""
from dgm.entry import start_log

start_log(snakemake.log[0])

import torch  # noqa: E402

from dgm import plotting  # noqa: E402

snapshots = torch.load(snakemake.input.snapshots, map_location="cpu", weights_only=True)
grids = {e: snapshots[e]["samples"] for e in snakemake.params.epochs}
plotting.save_grids_over_epochs(grids, snakemake.output[0], suptitle="RealNVP")
