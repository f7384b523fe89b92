# One training rule per model the pipeline trains (dgm.registry capability "trained"): train_vae,
# train_iwae, train_gan, train_flow, ...; a job per latent size x seed (x sweep point), all through
# scripts/train.py and the model's task module. A new model needs no rule of its own.

for _model in registry.names("trained"):

    rule:
        name:
            f"train_{_model}"
        input:
            splits=SPLITS,
        output:
            **train_outputs(_model),
        log:
            job_log("train", _model),
        benchmark:
            job_benchmark("train", _model)
        conda:
            ENV
        threads: TORCH_THREADS
        resources:
            gpu=GPU_JOB,
            mem_mb=registry.get(_model).train_mem_mb,
            runtime=registry.get(_model).train_runtime,
        params:
            **train_params(_model),
        script:
            "../scripts/train.py"
