# Configuration checks, wildcard constraints and the input/output functions every rule uses.
import sys
from pathlib import Path

import yaml
from snakemake.logging import logger
from snakemake.utils import update_config, validate

# This repository, found from this file: workflow.basedir is the main Snakefile's folder, which is the
# consumer's when the workflow is used as a module (README, "Use as a Snakemake module").
REPO_DIR = Path(str(workflow.current_basedir)).resolve().parents[1]
sys.path.insert(0, str(REPO_DIR / "workflow" / "scripts"))
import copy  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402

from dgm import data, experiments, registry  # noqa: E402
from dgm.config import validate_config  # noqa: E402

with open(REPO_DIR / "workflow" / "schemas" / "config.schema.yaml") as _f:
    CONFIG_SCHEMA = yaml.safe_load(_f)
STUDY_CONFIG = REPO_DIR / "config.yaml"  # the Snakefile's configfile: the full study, every key's default
if not any(Path(f).resolve() == STUDY_CONFIG for f in workflow.configfiles):
    # A module handed the consumer's config (`config: config`): Snakemake skipped our configfile:, so
    # config.yaml goes beneath that config here, and a partial config means what it means in a standalone run.
    with open(STUDY_CONFIG) as _f:
        _study = yaml.safe_load(_f)
    update_config(_study, config)
    config.update(_study)
# Our own pass first: it coerces --config strings and names every bad key with its full path;
# Snakemake's validate() then fills in the schema's defaults.
validate_config(config, CONFIG_SCHEMA)
validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# Torch jobs (training, evaluation, likelihood, sample quality) claim a GPU (resource gpu, which
# --resources gpu=N caps) unless the study runs on the CPU, and use config threads CPU threads each.
GPU_JOB = 0 if config["device"] == "cpu" else 1
TORCH_THREADS = config["threads"]


def _check_config(cfg):
    """Checks a JSON schema cannot express; each message names the key."""
    raw_dir = cfg["data"]["raw_dir"]
    if raw_dir is not None and not Path(raw_dir).is_dir():
        raise ValueError(f"config key data.raw_dir: {raw_dir!r} is not an existing folder")
    valid_size = cfg["data"]["valid_size"]
    if valid_size >= 1 and valid_size != int(valid_size):
        raise ValueError(f"config key data.valid_size: {valid_size} must be a fraction below 1 or a whole count")
    lo, hi = cfg["quality"]["parzen_sigma_range"]
    if lo > hi:
        raise ValueError(f"config key quality.parzen_sigma_range: [{lo}, {hi}] must be [smallest, largest]")
    if raw_dir is not None:  # the training-set size is knowable: check valid_size against it
        try:
            data.validation_count(valid_size, data.idx_length(data.find_raw_files(raw_dir)["train_labels"]))
        except data.DataError as e:
            raise ValueError(f"config key {e}") from None
    device = cfg["device"]
    if device.startswith("cuda") and workflow.local_exec:  # a cluster's jobs check on their own node
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"config key device: {device!r} but CUDA is not available here; use 'auto' or 'cpu'")
    for section in registry.names():
        cfg_m = cfg.get(section, {})
        late = sorted(e for e in cfg_m.get("sample_epochs", []) if e > cfg_m.get("epochs", e))
        if section in cfg["models"] and late:
            logger.warning(
                f"config key {section}.sample_epochs: {late} are beyond {section}.epochs = "
                f"{cfg_m['epochs']} and are dropped"
            )
    experiments.check_sweep(cfg, lambda trial: validate_config(copy.deepcopy(trial), CONFIG_SCHEMA))
    _check_sizes_and_baseline(cfg)


def _check_sizes_and_baseline(cfg):
    """Sizes beyond what the data give (a warning each, as for sample_epochs), and the baseline study of
    config compare.baseline (refused when missing or not a study; warned about when it cannot compare)."""
    models, raw_dir = cfg["models"], cfg["data"]["raw_dir"]
    n_test = 10_000  # the official test sets of mnist, fashion-mnist and kmnist
    if raw_dir is not None:
        try:
            n_test = data.idx_length(data.find_raw_files(raw_dir)["test_labels"])
        except data.DataError:
            n_test = None  # a bad file: the data job names it
    images = cfg["likelihood"]["ais"]["images"]
    if n_test and images > n_test and any(m in models for m in registry.names("decoder_likelihood")):
        logger.warning(
            f"config key likelihood.ais.images: {images} is more than the {n_test} test images; AIS uses all {n_test}"
        )
    n_samples = cfg["quality"]["n_samples"]
    large = sorted(n for n in cfg["quality"]["metrics"]["sample_sizes"] if n > n_samples)
    if large and any(m in models for m in registry.names("sampler")):
        logger.warning(
            f"config key quality.metrics.sample_sizes: {large} are beyond quality.n_samples = {n_samples} "
            "and are dropped"
        )
    if cfg["compare"]["baseline"]:
        try:
            for warning in experiments.check_baseline(cfg["compare"]["baseline"], cfg["data"]["name"]):
                logger.warning(f"config key compare.baseline: {warning}")
        except (OSError, ValueError) as e:
            raise ValueError(f"config key compare.baseline: {e}") from None


def check_writable(jobs):
    """At the start of a run (the Snakefile's onstart): every folder a job of the run writes its output,
    log or benchmark in must take files. Snakemake deletes an output before its job replaces it, and a
    read-only folder ends that in a long traceback; this names the folder in one line."""
    for job in jobs:
        for path in [*job.output, *job.log, *([job.benchmark] if job.benchmark else [])]:
            folder = Path(path).parent
            while not folder.exists() and folder != folder.parent:  # the folder it will be created in
                folder = folder.parent
            if not os.access(folder, os.W_OK):
                raise ValueError(
                    f"{folder}: a read-only folder, and this run writes {path}; make it writable "
                    f"(chmod -R u+w {folder}) or run the study in another working directory (snakemake -d)"
                )


_check_config(config)


def _register_external(cfg):
    """The model sheet (config ``external``, dgm.external): every entry checked and its capabilities
    found from its verbs, before any job; its models registered beside the built-in ones, and the
    checked sheet handed to the jobs in the environment (dgm.registry reads it there)."""
    if cfg["external"]:
        from dgm import external

        try:
            cfg["external"] = external.check_sheet(cfg["external"], builtin=registry.names("trained"))
        except external.ExternalModelError as e:
            raise ValueError(str(e)) from None
        registry.register_sheet(cfg["external"])
    if not cfg["models"] and not cfg["external"]:
        raise ValueError("config keys models and external: both empty; name a built-in model or an external one")
    os.environ[registry.SHEET_VARIABLE] = json.dumps(cfg["external"])


_register_external(config)


def _pdf_wanted(cfg):
    """Whether this run builds report.pdf: config report.pdf auto (where latexmk is found, with one
    warning where it is not), true (latexmk must be there: checked now, before any job) or false."""
    import shutil

    from dgm.tasks.latex import INSTALL_HINT

    pdf, found = cfg["report"]["pdf"], shutil.which("latexmk") is not None
    if pdf is True and not found:
        raise ValueError(f"config key report.pdf: true, but {INSTALL_HINT}")
    if pdf == "auto" and not found:
        logger.warning(
            "report.pdf is skipped: latexmk is not installed (report.html and report.tex are built). For the "
            "PDF: apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended, then rerun "
            "(--config 'report={pdf: true}' insists on it)"
        )
    return pdf is True or (pdf == "auto" and found)


BUILD_PDF = _pdf_wanted(config)
# The command line, for every run's run.json (jobs inherit the environment, also under Slurm).
os.environ.setdefault("DGM_COMMAND", shlex.join(sys.argv))

DATASET = config["data"]["name"]
RAW_STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
ENV = "../../envs/dgm.yaml"  # relative to this rules folder

# Every path of the results tree, defined once; rules and input functions use these names.
RAW = "results/{dataset}/raw"
SPLITS = "results/{dataset}/data/splits.pt"
SPLITS_SUMMARY = "results/{dataset}/data/splits.json"
# One training run; {point} is a sweep point's folders ("hidden_dim~256/"), empty outside a sweep.
RUN = "results/{dataset}/{model}/{point}z{latent}/seed{seed}"
FIGURES = "results/{dataset}/figures"  # figures of the whole study
POINT_FIGURES = "results/{dataset}/figures/{point}"  # figures of one sweep point (the study's own outside a sweep)
RUNS = "results/runs"  # the table of every run (runs.tsv, runs_summary.tsv, runs.html)
COMPARE = "results/compare"  # this study against config compare.baseline
QUALITY = "results/{dataset}/quality"
REAL_FEATURES = f"{QUALITY}/real_features.pt"  # the real splits in the classifier's features
REPORT = "results/report"
MODEL_FIGURES = {}  # model name -> function(seeds, point) of the figures its own rule file draws


def alternatives(*capabilities):
    """A wildcard pattern matching the registered models with every one of ``capabilities`` (none: "(?!)")."""
    return "|".join(m for m in registry.names() if all(registry.get(m).has(c) for c in capabilities)) or "(?!)"


wildcard_constraints:
    dataset="mnist|fashion-mnist|kmnist",
    model=alternatives(),
    point=r"(|([A-Za-z_][A-Za-z0-9_]*~[^/]+/)+)",
    latent=r"\d+",
    seed=r"\d+",
    epoch=r"\d+",


def configured(capability=None):
    """The models this run trains (config ``models``) or evaluates (config ``external``) that have
    ``capability``, in the registry's order."""
    return [m for m in registry.names(capability) if m in config["models"] or m in config["external"]]


def model_section(model):
    """A model's settings: its config section, or its entry in the model sheet (config ``external``)."""
    return config["external"][model] if registry.get(model).external else config[model]


def latent_sizes(model):
    """A model's latent sizes: its config's ``latent_sizes``, or the size its data or sheet entry fixes
    (a flow's 784; 0 for an external model without a latent variable)."""
    spec = registry.get(model)
    return [spec.fixed_latent] if spec.fixed_latent is not None else config[model]["latent_sizes"]


def model_seeds(model):
    """A model's seeds: config ``seeds`` for one the pipeline trains; an external model is one run (seed 0)."""
    return config["seeds"] if registry.get(model).trained else [0]


def points(model):
    """A model's sweep points as their path parts ("" when config ``sweep`` does not name it)."""
    return [experiments.point_path(p) for p in experiments.sweep_points(config["sweep"].get(model))]


def run_section(model, point=""):
    """A model's config section with the values of the sweep point ``point`` (its path part) applied."""
    for p in experiments.sweep_points(config["sweep"].get(model)):
        if experiments.point_path(p) == point:
            return experiments.apply_point(model_section(model), p)
    raise ValueError(f"{model}: {point!r} is not a sweep point of this configuration")


def run_config(model, point, latent, seed):
    """What defines one run (dgm.experiments.run_config): written to its run.json, and its hash checked
    before the run's results enter the runs table."""
    chosen = next(p for p in experiments.sweep_points(config["sweep"].get(model)) if experiments.point_path(p) == point)
    return experiments.run_config(
        model=model, section=run_section(model, point), data=config["data"], latent=latent, seed=seed, point=chosen
    )


def get_raw_files(wildcards):
    """The four IDX files in data.raw_dir (none when downloading): inputs of download_mnist, so a
    changed file reruns it and everything downstream. Snakemake reads even a function's paths as
    patterns, with no escape for braces: a folder whose path has them is reached through a link
    without them (.snakemake/dgm-raw/<hash of its path>)."""
    raw_dir = config["data"]["raw_dir"]
    if raw_dir is None:
        return {}
    folder = Path(raw_dir).resolve()
    if "{" in str(folder) or "}" in str(folder):
        import hashlib

        link = Path(".snakemake/dgm-raw") / hashlib.sha256(str(folder).encode()).hexdigest()[:16]
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(folder, target_is_directory=True)
        folder = link
    return {k: str(folder / Path(p).name) for k, p in data.find_raw_files(raw_dir).items()}


def snapshot_epochs(section, key):
    """Configured epochs that exist in this run (<= epochs), always with the last one."""
    cfg = config[section]
    return sorted({e for e in cfg[key] if e <= cfg["epochs"]} | {cfg["epochs"]})


def quality_snapshot_epochs(model):
    """Earlier epochs of a run scored from its snapshots besides the final model (gan.quality_epochs)."""
    cfg = model_section(model)
    return sorted(e for e in cfg.get("quality_epochs", []) if e < cfg["epochs"])


def interpolation_settings(model):
    """A decoder's interpolation figure: its config's interpolation_rows, _steps and _methods (the flow's
    one interpolation_method), else 5 rows of 9 points, linear and slerp."""
    cfg = model_section(model)
    methods = cfg.get("interpolation_methods") or [cfg.get("interpolation_method")]
    return dict(
        rows=cfg.get("interpolation_rows", 5),
        steps=cfg.get("interpolation_steps", 9),
        methods=[m for m in methods if m] or ["linear", "slerp"],
    )


def train_snapshot_epochs(model):
    """Epochs a training job keeps a snapshot of: its sample grids, manifolds and scored epochs."""
    epochs = set(snapshot_epochs(model, "sample_epochs")) | set(quality_snapshot_epochs(model))
    if "manifold_epochs" in config[model]:
        epochs |= set(snapshot_epochs(model, "manifold_epochs"))
    return sorted(epochs)


def run_dir(model="{model}", latent="{latent}", seed="{seed}", dataset="{dataset}", point="{point}"):
    return RUN.format(dataset=dataset, model=model, latent=latent, seed=seed, point=point)


def run_file(name, model="{model}", latent="{latent}"):
    """The file ``name`` in a run folder (wildcards where not given)."""
    return f"{run_dir(model, latent)}/{name}"


def _latent_of(model):
    """The latent part of a model's paths: fixed by its data (a flow's 784) or the {latent} wildcard."""
    spec = registry.MODELS.get(model)
    return spec.fixed_latent if spec and spec.fixed_latent is not None else "{latent}"


def job_log(step, model="{model}"):
    """The log of a per-run job; its benchmark file mirrors it (job_benchmark)."""
    return f"logs/{step}/{{dataset}}/{model}/{{point}}z{_latent_of(model)}/seed{{seed}}.log"


def job_benchmark(step, model="{model}"):
    return f"benchmarks/{step}/{{dataset}}/{model}/{{point}}z{_latent_of(model)}/seed{{seed}}.tsv"


def plot_log(name):
    """The log of a figure job drawing ``name`` (a figure path's file name, wildcards allowed)."""
    return f"logs/plot/{{dataset}}/{{point}}{name}.log"


def plot_benchmark(name):
    return f"benchmarks/plot/{{dataset}}/{{point}}{name}.tsv"


def train_outputs(model):
    """The declared outputs of a model's training job (rule train_<model>)."""
    d = run_dir(model, _latent_of(model))
    return dict(
        model=f"{d}/model.pt",
        metrics=f"{d}/metrics.csv",
        snapshots=f"{d}/snapshots.pt",
        record=f"{d}/{experiments.RUN_RECORD}",
        samples=expand(
            f"{d}/samples/epoch{{epoch:03d}}.png",
            epoch=snapshot_epochs(model, "sample_epochs"),
            allow_missing=True,
        ),
    )


def train_params(model):
    """A training job's params: the model's config section (with its sweep point), what defines the
    run (for run.json), and the epochs it keeps."""
    return dict(
        model=model,
        cfg=lambda w: experiments.run_section(run_section(model, w.point)),
        run_config=lambda w: run_config(model, w.point, int(w.get("latent", _latent_of(model))), int(w.seed)),
        sample_epochs=snapshot_epochs(model, "sample_epochs"),
        snapshot_epochs=train_snapshot_epochs(model),
        device=config["device"],
    )


def get_runs(capability=None):
    """(model, point, latent, seed) of every run this configuration trains whose model has ``capability``."""
    return [
        (m, p, z, s) for m in configured(capability) for p in points(m) for z in latent_sizes(m) for s in model_seeds(m)
    ]


def get_scored_runs():
    """Every trained run whose model samples: sample_quality scores each."""
    return get_runs("sampler")


def get_run_files(name, dataset=DATASET, capability="sampler", model=None):
    """The file ``name`` in the run folder of every run with ``capability`` (of ``model`` only, if given)."""
    return [f"{run_dir(m, z, s, dataset, p)}/{name}" for m, p, z, s in get_runs(capability) if model in (None, m)]


def parzen_sigmas():
    """Parzen bandwidths tried on validation: parzen_n_sigmas log-spaced values across parzen_sigma_range."""
    import numpy as np

    lo, hi = config["quality"]["parzen_sigma_range"]
    return np.logspace(np.log10(lo), np.log10(hi), config["quality"]["parzen_n_sigmas"]).tolist()


def get_sample_quality_input(wildcards):
    d = run_dir(wildcards.model, wildcards.latent, wildcards.seed, wildcards.dataset, wildcards.point)
    inputs = {
        "model": f"{d}/model.pt",
        "classifier": f"{QUALITY}/classifier.pt".format(dataset=wildcards.dataset),
        "features": REAL_FEATURES.format(dataset=wildcards.dataset),
        "splits": SPLITS.format(dataset=wildcards.dataset),
    }
    if quality_snapshot_epochs(wildcards.model):
        inputs["snapshots"] = f"{d}/snapshots.pt"
    return inputs


def get_likelihood_outputs():
    """Named lists of the likelihood rules' results for every latent-variable run (quadrature for z = 2)."""
    runs = [(z, run_dir(m, z, s, DATASET, p)) for m, p, z, s in get_runs("latent_variable")]
    if not runs:
        return {}
    return {
        "likelihood_tests": [f"{d}/test_nll.json" for _, d in runs],
        "likelihood_sweeps": [f"{d}/estimator_sweep.csv" for _, d in runs],
        "likelihood_quadrature": [f"{d}/quadrature.json" for z, d in runs if z == 2],
        "kl_examples": ["results/likelihood/kl_examples.csv"],
        "likelihood_gaps": [
            f"results/{DATASET}/likelihood/{p}latent_gap_{m}.csv"
            for m in configured("latent_variable")
            for p in points(m)
            if len(latent_sizes(m)) >= LATENT_GAP_MIN_SIZES
        ],
    }


def get_likelihood_sweep_input(wildcards):
    """Every latent size's estimator sweep of one model, point and seed, and the z = 2 quadrature when z = 2 is trained."""
    sizes = latent_sizes(wildcards.model)
    d = {z: run_dir(wildcards.model, z, wildcards.seed, wildcards.dataset, wildcards.point) for z in sizes}
    return {
        "sweeps": [f"{d[z]}/estimator_sweep.csv" for z in sizes],
        "quadrature": [f"{d[2]}/quadrature.json"] if 2 in sizes else [],
    }


def get_latent_gap_input(wildcards):
    """Every latent size's and seed's estimator sweep of one model at one point: the gap figure."""
    return [
        f"{run_dir(wildcards.model, z, s, wildcards.dataset, wildcards.point)}/estimator_sweep.csv"
        for z in latent_sizes(wildcards.model)
        for s in config["seeds"]
    ]


def ais_sweep_input(wildcards):
    """Every latent size's AIS sweep of one model, point and seed: one figure."""
    return [
        f"{run_dir(wildcards.model, z, wildcards.seed, wildcards.dataset, wildcards.point)}/ais_sweep.csv"
        for z in latent_sizes(wildcards.model)
    ]


def get_ais_outputs():
    """Named lists of the AIS rules' results for every run of a decoder model without an exact density."""
    runs = [run_dir(m, z, s, DATASET, p) for m, p, z, s in get_runs("decoder_likelihood")]
    if not runs:
        return {}
    return {
        "ais": [f"{d}/ais.json" for d in runs],
        "ais_sigma": [f"{d}/ais_sigma.json" for d in runs],
        "bdmc": [f"{d}/bdmc.json" for d in runs],
    }


def curve_input(model=None):
    """Input function: the metrics.csv of every latent size and seed of ``model`` (else the {model}
    wildcard's) at the {point} wildcard's sweep point, drawn in one training-curve figure."""

    def metrics(wildcards):
        m = model or wildcards.model
        return [
            f"{run_dir(m, z, s, wildcards.dataset, wildcards.point)}/metrics.csv"
            for z in latent_sizes(m)
            for s in config["seeds"]
        ]

    return metrics


# The §1.4b figure (naive Monte Carlo against importance sampling over the latent size) needs a curve.
LATENT_GAP_MIN_SIZES = 3


def get_figures(first_seed_only=False):
    """Every figure the configured models draw at every sweep point: curves over all seeds, and the
    image figures (samples, manifolds, interpolations, estimator sweeps) of every seed or only the
    first. Latent-variable models share their figures (by capability); a trained model's snapshots
    give its sample grids, an external model's samples are drawn from it; a model's own rule file
    adds the rest through MODEL_FIGURES; sweeps add one figure per swept key."""
    out = []
    for m in configured():
        spec = registry.get(m)
        seeds = model_seeds(m)[:1] if first_seed_only else model_seeds(m)
        for p in points(m):
            figs = POINT_FIGURES.format(dataset=DATASET, point=p)
            if spec.latent_variable and spec.trained:
                out.append(f"{figs}{m}_elbo.png")
                for z in latent_sizes(m):
                    for s in seeds:
                        out.append(f"{figs}{m}_samples_z{z}_seed{s}.png")
                        out += [f"{figs}{m}_manifold_z2_seed{s}.png"] if z == 2 else []
            if spec.latent_variable:
                out += [f"{figs}likelihood_sweep_{m}_seed{s}.png" for s in seeds]
                if len(latent_sizes(m)) >= LATENT_GAP_MIN_SIZES:
                    out.append(f"{figs}likelihood_gap_{m}.png")
            if spec.decoder_likelihood:
                out += [f"{figs}ais_sweep_{m}_seed{s}.png" for s in seeds]
            for z in latent_sizes(m) if spec.external and spec.sampler else []:
                out += [f"{figs}{m}_samples_z{z}_seed{s}.png" for s in seeds]
            for z in latent_sizes(m) if spec.decoder else []:
                out += [f"{figs}{m}_interpolation_z{z}_seed{s}.png" for s in seeds]
            if m in MODEL_FIGURES:
                out += MODEL_FIGURES[m](seeds, p)
        for key in config["sweep"].get(m, {}):
            out.append(f"{FIGURES}/sweep_{m}_{key}.png".format(dataset=DATASET))
    if get_scored_runs():
        out.append(f"{FIGURES}/quality_sample_size.png".format(dataset=DATASET))
    first = [r for r in get_scored_runs() if not first_seed_only or r[3] == model_seeds(r[0])[0]]
    out += [
        f"{POINT_FIGURES}memorisation_{m}_z{z}_seed{s}.png".format(dataset=DATASET, point=p) for m, p, z, s in first
    ]
    return out


def get_run_records():
    """Every run's run.json: the runs table's rows."""
    return get_run_files(experiments.RUN_RECORD, capability=None)


def get_runs_input(wildcards):
    """The runs table reads every run's record and the result files its model's capabilities give it
    (dgm.experiments.RESULT_FILES, the one declaration of them)."""
    results = get_run_files(experiments.RUN_RECORD, capability=None)
    for result in experiments.RESULT_FILES:
        results += result_paths(result, result.name)
    return {"results": list(dict.fromkeys(results))}


def result_paths(result, name):
    """The file ``name`` (a result file's, or its per-image twin's) in every run that has the result
    file ``result`` (dgm.experiments.RESULT_FILES: its capabilities and latent size)."""
    return [
        f"{run_dir(m, z, s, DATASET, p)}/{name}"
        for capability in result.capabilities
        for m, p, z, s in get_runs(capability)
        if result.latent in (None, z)
    ]


def expected_hashes():
    """{run folder: the config hash its run.json must carry}, for every run of this configuration."""
    return {run_dir(m, z, s, DATASET, p): experiments.config_hash(run_config(m, p, z, s)) for m, p, z, s in get_runs()}


def get_final_outputs():
    """What a full run makes: everything the report reads, every seed's figures, the sample-quality
    table and the documents."""
    out = [p for paths in get_report_inputs(None).values() for p in paths] + get_figures()
    if get_scored_runs():
        out.append(f"{QUALITY}/sample_quality.tsv".format(dataset=DATASET))
    out += [f"{RUNS}/runs.tsv", f"{RUNS}/runs_summary.tsv", f"{RUNS}/runs.html"]
    if config["compare"]["baseline"]:
        out += [f"{COMPARE}/compare.tsv"] + [f"{COMPARE}/curves_{m}.png" for m in configured()]
    return list(dict.fromkeys(out + get_report_documents()))


def get_report_documents():
    """What `snakemake report` builds: the HTML, the LaTeX source and, unless switched off, the PDF."""
    docs = [f"{REPORT}/report.html", f"{REPORT}/report.tex"]
    return docs + ([f"{REPORT}/report.pdf"] if BUILD_PDF else [])


def get_report_inputs(wildcards):
    """Named lists of paths; each report section (``report_section`` of a model's task module,
    found through dgm.registry) picks its own: ``<model>_metrics``, ``<model>_tests`` (the test-set
    evaluation of latent-variable and density models) and ``<model>_figures`` for every configured
    model. The document shows curves over all seeds and the image figures of the first seed."""
    figures = get_figures(first_seed_only=True)
    inputs = {
        "splits": [SPLITS_SUMMARY.format(dataset=DATASET)],
        "models": get_run_files("model.pt", capability=None),
    }
    for m in configured():
        spec = registry.get(m)
        if spec.trained:
            inputs[f"{m}_metrics"] = get_run_files("metrics.csv", model=m, capability=None)
        else:
            inputs[f"{m}_conformance"] = get_run_files("conformance.json", model=m, capability=None)
        if spec.latent_variable or spec.density:
            inputs[f"{m}_tests"] = get_run_files("test_metrics.json", model=m, capability=None)
        inputs[f"{m}_figures"] = [p for p in figures if Path(p).name.startswith(f"{m}_")]
    return {
        **inputs,
        "quality_runs": get_run_files("quality.json"),
        "quality_reference": [f"{QUALITY}/reference.json".format(dataset=DATASET)] if get_scored_runs() else [],
        "quality_figures": [p for p in figures if Path(p).name.startswith("quality_")],
        **get_likelihood_outputs(),
        "likelihood_figures": [p for p in figures if Path(p).name.startswith("likelihood_")],
        **get_ais_outputs(),
        "ais_figures": [p for p in figures if Path(p).name.startswith("ais_")],
        "run_records": get_run_records(),
        "per_image": [
            path
            for result in experiments.RESULT_FILES
            if result.per_image
            for path in result_paths(result, result.per_image_name)
        ],
        "generalisation": get_run_files("generalisation.json", capability="likelihood"),
        "memorisation": get_run_files("memorisation.json"),
        "memorisation_figures": [p for p in figures if Path(p).name.startswith("memorisation_")],
        "runs_summary": [f"{RUNS}/runs_summary.tsv"],
        "sweep_figures": [p for p in figures if Path(p).name.startswith("sweep_")],
    }
