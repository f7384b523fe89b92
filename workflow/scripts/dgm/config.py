"""Configuration helpers used by workflow/rules/common.smk before validation.

Snakemake's ``--config`` takes top-level keys only and parses nested YAML values as strings
(``--config 'vae={latent_sizes: [0]}'`` gives ``['0']``), so values are coerced to the types the
schema asks for first; validation then reports the offending key with its dotted path.
"""
from __future__ import annotations

import yaml


def _types(schema: dict) -> list[str]:
    t = schema.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _parse_scalar(text: str):
    for parse in (int, float):  # YAML 1.1 reads "1e-3" as a string; Python does not
        try:
            return parse(text)
        except ValueError:
            pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def coerce_to_schema(value, schema: dict):
    """Return ``value`` with strings turned into the number/boolean/null/list the schema expects."""
    types = _types(schema)
    if isinstance(value, str) and "null" in types and value in ("null", "~", "None"):
        return None
    if isinstance(value, str) and types and "string" not in types:
        value = _parse_scalar(value)
    elif isinstance(value, str) and "boolean" in types and value.lower() in ("true", "false"):
        value = value.lower() == "true"  # a boolean-or-word key (report.pdf: true, false or auto)
    if isinstance(value, dict) and "properties" in schema:
        return {k: coerce_to_schema(v, schema["properties"].get(k, {})) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce_to_schema(v, schema["items"]) for v in value]
    return value


def coerce_sweep(sweep, schema: dict):
    """Sweep values with the type of the key each sets (``sweep.vae.lr`` takes ``vae.lr``'s): the
    sweep's own schema admits strings, so ``--config 'sweep={vae: {hidden_dim: [32]}}'`` (Snakemake
    hands over ``'32'``) and ``lr: [1e-3]`` in a YAML file (YAML 1.1 reads a string) would otherwise name
    folders ``lr~1e-3`` and reach a model as text. Unknown sections and keys stay as given (the
    sweep check names them)."""
    if not isinstance(sweep, dict):
        return sweep
    sections = schema.get("properties", {})
    out = {}
    for section, keys in sweep.items():
        props = sections.get(section, {}).get("properties", {})
        out[section] = keys if not isinstance(keys, dict) else {
            key: [coerce_to_schema(v, props[key]) for v in values] if key in props and isinstance(values, list)
            else values
            for key, values in keys.items()}
    return out


def validation_message(error) -> str:
    """'config key vae.latent_sizes[0]: 0 is less than the minimum of 1' from a jsonschema error."""
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"config key {path or '(top level)'}: {error.message}"


def validate_config(config: dict, schema: dict) -> dict:
    """Coerce, fill defaults and validate; raise ValueError naming every bad key."""
    import jsonschema

    coerced = coerce_to_schema(config, schema)
    if "sweep" in coerced:
        coerced["sweep"] = coerce_sweep(coerced["sweep"], schema)
    config.clear()
    config.update(coerced)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ValueError("invalid configuration:\n  " + "\n  ".join(validation_message(e) for e in errors))
    return config


class ModelConfig:
    """Base of the models' frozen config dataclasses: ``from_dict`` refuses unknown options by
    name, and ``__post_init__`` checks the fields listed in ``POSITIVE_INTS`` (positive integers,
    not bools) and ``UNIT_INTERVAL`` (floats in [0, 1)); subclasses add their own checks in
    ``check()``. ``KIND`` names the model in messages ("unknown VAE option(s): ...")."""

    KIND = "model"
    POSITIVE_INTS: tuple[str, ...] = ()
    UNIT_INTERVAL: tuple[str, ...] = ()

    def __post_init__(self):
        for name in self.POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive integer, got {value!r}")
        for name in self.UNIT_INTERVAL:
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{type(self).__name__}.{name} must be in [0, 1), got {value!r}")
        self.check()

    def check(self) -> None:
        """Further checks of a subclass; raise ValueError naming the field."""

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls.KIND} option(s): {sorted(unknown)}")
        return cls(**d)
