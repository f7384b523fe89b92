"""Models the pipeline did not train: the model sheet, loading a model by its import path or a file
of its samples, and the conformance check each passes before any heavy job.

The sheet is config ``external`` ({name: entry}; config/README.md). An entry names either

- ``import: "package.module:Name"`` (a class, or a factory returning an ``nn.Module``), its
  ``kwargs``, a ``checkpoint`` (a ``state_dict`` file, loaded with ``weights_only=True``) and
  optionally ``path`` (a folder put first on the import path); or
- ``samples``: a ``.npy``/``.pt`` array of N images ((N, 28, 28), (N, 1, 28, 28) or (N, 784);
  uint8 0..255 or floats in [0, 1]) or a folder of 28 x 28 PNG images;

and always ``data``, the pixels it models (``dgm.registry.DATA_KINDS``). A model's capabilities
follow from the verbs it has (``dgm.models``' protocol), restricted by ``capabilities`` if given.

While Snakemake builds the DAG, ``check_sheet`` checks every entry and finds its capabilities (it
imports the model's module, nothing more). The first job of each model, ``import_model``, builds it,
loads its weights, calls every verb on a few test images (``conformance``) and only then writes the
model file that every evaluation rule reads, in the same form as a trained model's. Every failure is
one line naming the model and the key or verb.
"""
from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import sys
import typing
from pathlib import Path

from dgm import registry

log = logging.getLogger("dgm")

IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
SAMPLE_SUFFIXES = (".npy", ".pt")
# The verbs behind each capability (dgm.models' protocol); latent_dim is checked on the built model.
VERBS = {"sampler": ("sample",), "latent_variable": ("encode", "log_likelihood"), "decoder": ("decode",),
         "density": ("log_prob",)}
NEEDS_LATENT = ("latent_variable", "decoder")
CHECK_IMAGES = 8  # test images the conformance check calls every verb on
MODEL_FILE_VERSION = 1
ENTRY_DEFAULTS = {"kwargs": {}, "eval_batch_size": 500, "eval_k": 1}  # of the keys an entry may leave out


class ExternalModelError(ValueError):
    """A model of the sheet that cannot be used as it is: the message names the model and the key or verb."""

    user_facing = True  # an entry script logs the message alone (dgm.entry)


def _fail(name: str, where: str, message: str) -> typing.NoReturn:
    raise ExternalModelError(f"external model {name!r}: {where}: {message}")


# -- the sheet, while the DAG is built


def check_sheet(sheet: dict | None, *, builtin: list[str]) -> dict[str, dict]:
    """Every entry of the sheet checked, with its ``capabilities`` (a list in the registry's order)
    and ``latent_dim`` (None without a latent variable) filled in. Raises ``ExternalModelError``."""
    out = {}
    for name, entry in (sheet or {}).items():
        entry = {**ENTRY_DEFAULTS, **entry} if "import" in entry else {**entry}
        if name in builtin:
            _fail(name, "config key external", f"{name!r} is a built-in model's name; give this model another")
        clash = next((o for o in [*builtin, *sheet] if o != name and name.startswith(f"{o}_")), None)
        if clash:  # a model's figures are the files named "<model>_..."
            _fail(name, "config key external", f"{name!r} starts with another model's name and '_' ({clash!r}); "
                  "give this model another")
        if ("import" in entry) == ("samples" in entry):
            _fail(name, "config key external", "give either 'import' (with 'checkpoint') or 'samples', not both")
        if "samples" in entry:
            for key in ("checkpoint", "kwargs", "path"):
                if key in entry:
                    _fail(name, f"config key external.{name}.{key}", "only for a model given by 'import'")
            _check_samples_source(name, entry["samples"])
            found = {"sampler"}
        else:
            if "checkpoint" not in entry:
                _fail(name, f"config key external.{name}.checkpoint", "missing: the state_dict file of the model")
            if not Path(entry["checkpoint"]).is_file():
                _fail(name, f"config key external.{name}.checkpoint", f"{entry['checkpoint']!r} is not a file")
            if entry.get("path") is not None and not Path(entry["path"]).is_dir():
                _fail(name, f"config key external.{name}.path", f"{entry['path']!r} is not an existing folder")
            found = capabilities_of(resolve(name, entry["import"], entry.get("path")))
            if found is None and "capabilities" not in entry:
                _fail(name, f"config key external.{name}.capabilities", f"{entry['import']!r} is a factory without "
                      "a class as its return annotation: list the capabilities of the model it returns")
        wanted = set(entry.get("capabilities") or found or ())
        missing = sorted(wanted - found) if found is not None else []
        if missing:
            verbs = ", ".join(v for c in missing for v in VERBS[c])
            _fail(name, f"config key external.{name}.capabilities", f"lists {missing} but the model has no {verbs}")
        if not wanted:
            _fail(name, "verbs", "the model has none of sample, encode + log_likelihood, decode, log_prob")
        if "latent_variable" in wanted and entry["data"] != "binary":
            _fail(name, f"config key external.{name}.data", "a latent-variable model is evaluated on binarised "
                  f"pixels (data: binary), got {entry['data']!r}; restrict its capabilities to evaluate it otherwise")
        latent = None
        if wanted & set(NEEDS_LATENT):
            latent = entry.get("latent_dim", (entry.get("kwargs") or {}).get("latent_dim"))
            if isinstance(latent, bool) or not isinstance(latent, int) or latent < 1:
                _fail(name, f"config key external.{name}.latent_dim", "a model with encode or decode needs its "
                      f"latent size, a positive integer (here or as kwargs.latent_dim), got {latent!r}")
        out[name] = {**entry, "capabilities": [c for c in registry.CAPABILITIES if c in wanted], "latent_dim": latent}
        if "samples" in entry:
            out[name].update(eval_batch_size=ENTRY_DEFAULTS["eval_batch_size"], eval_k=ENTRY_DEFAULTS["eval_k"])
    return out


def _check_samples_source(name: str, source: str) -> None:
    p = Path(source)
    if p.is_dir():
        if not any(p.glob("*.png")):
            _fail(name, f"config key external.{name}.samples", f"the folder {source!r} holds no .png image")
    elif not p.is_file():
        _fail(name, f"config key external.{name}.samples", f"{source!r} is neither a file nor a folder")
    elif p.suffix not in SAMPLE_SUFFIXES:
        _fail(name, f"config key external.{name}.samples", f"{source!r}: give a {' or '.join(SAMPLE_SUFFIXES)} "
              "array or a folder of PNG images")


def resolve(name: str, import_path: str, folder: str | None = None):
    """The class or factory ``package.module:Name`` names, ``folder`` first on the import path."""
    if not isinstance(import_path, str) or not IMPORT_PATH.match(import_path):
        _fail(name, f"config key external.{name}.import", f"{import_path!r} is not of the form 'package.module:Name'")
    if folder is not None:
        folder = str(Path(folder).resolve())
        if folder not in sys.path:
            sys.path.insert(0, folder)
    module_name, attr = import_path.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any failure of the user's module is reported in one line
        _fail(name, f"config key external.{name}.import", f"{module_name!r} does not import: {type(e).__name__}: {e}")
    if not hasattr(module, attr):
        _fail(name, f"config key external.{name}.import", f"module {module_name!r} has no {attr!r}")
    obj = getattr(module, attr)
    if not callable(obj):
        _fail(name, f"config key external.{name}.import", f"{import_path!r} is neither a class nor a factory")
    return obj


def capabilities_of(obj) -> set[str] | None:
    """The capabilities the verbs of a class give (of a factory's annotated return class); None
    when a factory does not say what it returns."""
    cls = obj if inspect.isclass(obj) else None
    if cls is None:
        try:
            ret = typing.get_type_hints(obj).get("return")
        except Exception:  # noqa: BLE001 - an unresolvable annotation says nothing
            ret = None
        cls = ret if inspect.isclass(ret) else None
    if cls is None:
        return None
    return {c for c, verbs in VERBS.items() if all(callable(getattr(cls, v, None)) for v in verbs)}


# -- building a model from its description (the model file's "model")


def describe(name: str, entry: dict) -> dict:
    """The model file's description of a sheet entry: enough to rebuild the network anywhere."""
    spec = {"name": name, "title": entry.get("title") or name, "data": entry["data"],
            "capabilities": list(entry["capabilities"]), "latent_dim": entry.get("latent_dim")}
    if "samples" in entry:
        return {"class": "Samples", **spec, "source": str(Path(entry["samples"]).resolve())}
    path = entry.get("path")
    return {"class": "External", **spec, "import": entry["import"], "kwargs": dict(entry.get("kwargs") or {}),
            "path": str(Path(path).resolve()) if path is not None else None,
            "checkpoint": str(Path(entry["checkpoint"]).resolve())}


def build(description: dict):
    """An untrained network from an external model's description; it carries its model's name
    (``registry.spec_of``), and its spec is registered if this process has not seen it."""
    from torch import nn

    name = description["name"]
    if name not in registry.MODELS:
        registry.register_sheet({name: description})
    if description["class"] == "Samples":
        from dgm.models import SampleBank

        model = SampleBank(description["n"])
    else:
        factory = resolve(name, description["import"], description.get("path"))
        try:
            model = factory(**description.get("kwargs", {}))
        except Exception as e:  # noqa: BLE001 - the user's constructor: one line, not a traceback
            _fail(name, "import", f"{description['import']}(**{description.get('kwargs', {})}) raised "
                  f"{type(e).__name__}: {e}")
        if not isinstance(model, nn.Module):
            _fail(name, "import", f"{description['import']} returned a {type(model).__name__}, not a torch.nn.Module")
    model.dgm_model_name = name
    return model


# -- the import job: weights or samples, the conformance check, the model file


def sha256(path: str | os.PathLike) -> str:
    """A checkpoint's or samples file's sha256, for run.json (also the feature classifier's, for its numbers)."""
    from dgm import io

    return io.file_digest(path, "sha256")


def load_weights(model, name: str, path: str) -> None:
    """Load a state_dict file into ``model`` (``weights_only=True``); a file of another network
    names its missing and unexpected keys; a NaN or Inf weight is refused."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a pickle with code in it, a corrupt file: one line
        _fail(name, "checkpoint", f"{path} does not load with weights_only=True: {type(e).__name__}: {e}")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint holding the weights under "state_dict"
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        _fail(name, "checkpoint", f"{path} is not a state_dict (a dict of tensors)")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        _fail(name, "checkpoint", f"{path} does not match the model: missing keys {_few(missing)}, "
              f"unexpected keys {_few(unexpected)}")
    wrong = [f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})" for k, v in state.items() if v.shape != own[k].shape]
    if wrong:
        _fail(name, "checkpoint", f"{path}: shapes differ: {_few(wrong)}")
    from dgm.models import non_finite_weights

    bad = non_finite_weights(state)
    if bad:
        _fail(name, "checkpoint", f"{path}: non-finite weights in {_few(bad)}")
    model.load_state_dict(state)


def _few(items: list[str], n: int = 5) -> str:
    return "[" + ", ".join(items[:n]) + (f", ... ({len(items)} in all)" if len(items) > n else "") + "]"


def load_samples(name: str, source: str):
    """The images of a samples entry as uint8 (N, 1, 28, 28)."""
    import numpy as np
    import torch

    p = Path(source)
    if p.is_dir():
        from PIL import Image

        arrays = []
        for f in sorted(p.glob("*.png")):
            with Image.open(f) as im:
                if im.size != (28, 28):
                    _fail(name, "samples", f"{f} is {im.size[0]} x {im.size[1]} pixels, not 28 x 28")
                arrays.append(np.asarray(im.convert("L"), dtype=np.uint8))
        array = np.stack(arrays)
    else:
        try:
            array = np.load(p, allow_pickle=False) if p.suffix == ".npy" else torch.load(p, weights_only=True)
        except Exception as e:  # noqa: BLE001
            _fail(name, "samples", f"{source} does not load as an array: {type(e).__name__}: {e}")
    x = torch.as_tensor(array) if not isinstance(array, torch.Tensor) else array
    if not isinstance(x, torch.Tensor):
        _fail(name, "samples", f"{source} holds a {type(array).__name__}, not an array")
    if x.ndim < 2 or x.shape[1:] not in ((28, 28), (1, 28, 28), (784,)) or len(x) == 0:
        _fail(name, "samples", f"{source} has shape {tuple(x.shape)}; give (N, 28, 28), (N, 1, 28, 28) or (N, 784)")
    if x.dtype == torch.uint8:
        return x.reshape(len(x), 1, 28, 28).contiguous()
    if not x.is_floating_point():
        _fail(name, "samples", f"{source} has dtype {x.dtype}; give uint8 pixels 0..255 or floats in [0, 1]")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        _fail(name, "samples", f"{source}: float samples must be finite and in [0, 1], got [{x.min():g}, {x.max():g}]")
    return (x.double() * 255).round().to(torch.uint8).reshape(len(x), 1, 28, 28).contiguous()


def conformance(model, name: str, *, capabilities: list[str], data: str, latent_dim: int | None, x, seed: int = 0
                ) -> list[dict]:
    """Call every verb of ``capabilities`` on the test images ``x`` (on the model's data scale,
    ``dgm.models``' protocol) and check shapes, ranges, finiteness and units. Returns one row per
    check; the first failure raises ``ExternalModelError`` naming the model and the verb."""
    import torch

    dev = x.device
    b = len(x)
    rows = []

    def ok(verb: str, what: str) -> None:
        rows.append({"verb": verb, "check": what, "passed": True})

    def tensor(verb: str, value, shape: tuple, *, low=None, high=None, what: str = "") -> torch.Tensor:
        if not isinstance(value, torch.Tensor):
            _fail(name, verb, f"returned a {type(value).__name__}, not a tensor")
        if tuple(value.shape) != shape:
            _fail(name, verb, f"returned shape {tuple(value.shape)}, expected {shape}{what}")
        if not value.is_floating_point():
            _fail(name, verb, f"returned dtype {value.dtype}, expected floating point")
        if not torch.isfinite(value).all():
            _fail(name, verb, f"returned {int((~torch.isfinite(value)).sum())} non-finite values (NaN or Inf)")
        lo, hi = value.min().item(), value.max().item()
        if low is not None and lo < low:
            _fail(name, verb, f"returned values down to {lo:.4g}, below {low}{what}")
        if high is not None and hi > high:
            _fail(name, verb, f"returned values up to {hi:.4g}, above {high}{what}")
        ok(verb, f"shape {shape}, finite, in [{lo:.4g}, {hi:.4g}]")
        return value

    def call(verb: str, *args, **kwargs):
        try:
            return getattr(model, verb)(*args, **kwargs)
        except ExternalModelError:
            raise
        except Exception as e:  # noqa: BLE001 - the user's verb: one line
            _fail(name, verb, f"raised {type(e).__name__}: {e}")

    discrete = " (log-probabilities of discrete pixels are never positive: is 'data' right?)"
    with torch.inference_mode():
        if "sampler" in capabilities:
            s = tensor("sample", call("sample", 4, generator=torch.Generator(device=dev).manual_seed(seed)),
                       (4, 1, 28, 28), low=0.0, high=1.0, what=" (images in [0, 1])")
            from dgm.models import SampleBank

            if not isinstance(model, SampleBank):  # a fixed seed gives the same images
                again = call("sample", 4, generator=torch.Generator(device=dev).manual_seed(seed))
                if not torch.equal(s, again):
                    _fail(name, "sample", "two calls with generators of the same seed gave different images: "
                          "draw every random number from the generator argument")
                ok("sample", "the same seed gives the same images")
        if set(capabilities) & set(NEEDS_LATENT):
            z_dim = getattr(model, "latent_dim", None)
            if z_dim != latent_dim:
                _fail(name, "latent_dim", f"the model's latent_dim is {z_dim!r}, the sheet says {latent_dim}")
            ok("latent_dim", f"{z_dim}")
        if "latent_variable" in capabilities:
            out = call("encode", x)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                _fail(name, "encode", "must return (mu, logvar), a pair of tensors")
            mu = tensor("encode", out[0], (b, latent_dim), what=" (mu)")
            tensor("encode", out[1], (b, latent_dim), what=" (logvar)")
            z = mu + torch.randn((3, b, latent_dim), generator=torch.Generator(device=dev).manual_seed(seed),
                                 device=dev, dtype=mu.dtype)
            high = 0.0 if data in ("binary", "bytes") else None
            tensor("log_likelihood", call("log_likelihood", x, z), (3, b), high=high,
                   what=" for z of shape (3, B, Z)" + (discrete if high is not None else ""))
            tensor("log_likelihood", call("log_likelihood", x, z[0]), (b,), high=high, what=" for z of shape (B, Z)")
        if "decoder" in capabilities:
            z = torch.randn((b, latent_dim), generator=torch.Generator(device=dev).manual_seed(seed), device=dev)
            tensor("decode", call("decode", z), (b, 1, 28, 28), low=0.0, high=1.0, what=" (images in [0, 1])")
        if "density" in capabilities:
            high = 0.0 if data in ("binary", "bytes") else None
            tensor("log_prob", call("log_prob", x, generator=torch.Generator(device=dev).manual_seed(seed)), (b,),
                   high=high, what=" (nats per image)" + (discrete if high is not None else ""))
    return rows


def import_model(*, name: str, entry: dict, splits_path: str, model_path: str, conformance_path: str,
                 record_path: str, run_config: dict, n_samples: int, device: str = "auto", repo_dir=None) -> dict:
    """The import job of one external model: build it and load its weights (or read its samples),
    run the conformance check on test images, then write the model file every evaluation reads,
    conformance.json and run.json (with the checkpoint's or samples' sha256). Nothing is written
    unless every check passes."""

    from dgm import data, experiments, io, training

    dev = training.select_device(device)
    description = describe(name, entry)
    source = entry.get("checkpoint") or entry["samples"]
    digest = sha256(source) if Path(source).is_file() else None
    if description["class"] == "Samples":
        images = load_samples(name, entry["samples"])
        if len(images) < n_samples:
            _fail(name, "samples", f"{entry['samples']} holds {len(images)} images; quality.n_samples asks for "
                  f"{n_samples}: give more samples or lower quality.n_samples")
        description["n"] = len(images)
        model = build(description)
        model.images.copy_(images)
    else:
        model = build(description)
        load_weights(model, name, entry["checkpoint"])
    description["sha256"] = digest
    model = model.to(dev).eval()
    splits = data.load_splits(splits_path)
    x = data.images_for(splits, "test", entry["data"], dev)[:CHECK_IMAGES]
    rows = conformance(model, name, capabilities=entry["capabilities"], data=entry["data"],
                       latent_dim=entry.get("latent_dim"), x=x)
    if description["class"] == "Samples":
        model.cursor = 0
    log.info("%s: %d conformance checks passed on %d test images", name, len(rows), len(x))
    started = experiments.now()
    io.torch_save({"version": MODEL_FILE_VERSION, "model": description,
                   "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}, "epoch": None,
                   "options": {}, "device": str(dev), "device_name": training.describe_device(dev)}, model_path)
    result = {"model": name, "source": str(source), "sha256": digest, "data": entry["data"],
              "capabilities": entry["capabilities"], "latent_dim": entry.get("latent_dim"), "checks": rows,
              "parameters": None if description["class"] == "Samples" else
              sum(t.numel() for t in model.state_dict().values() if t.is_floating_point()),  # buffers too: an EM fit
              "samples": description.get("n")}
    io.write_json(result, conformance_path)
    record = experiments.run_record(config=run_config, started=started, ended=experiments.now(),
                                    device=training.describe_device(dev), repo_dir=repo_dir or Path.cwd(),
                                    command=os.environ.get("DGM_COMMAND"))
    record["source"] = {"path": str(source), "sha256": digest}
    io.write_json(record, record_path)
    return result
