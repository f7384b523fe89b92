# IWAE (Burda et al. 2016): the VAE's networks on the k-sample bound. Its evaluation, likelihood,
# sample quality, figures and report section come from its capabilities (dgm.registry).


use rule train_vae as train_iwae with:
    output:
        **train_outputs("iwae"),
    log:
        job_log("train", "iwae"),
    benchmark:
        job_benchmark("train", "iwae")
    params:
        **train_params("iwae"),
