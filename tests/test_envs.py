"""Every rule's conda env pins exactly the packages and versions of requirements.txt."""
import re

import yaml

from conftest import REPO


def _requirements():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not an exact pin"
            pins[name.lower()] = version
    return pins


def _env_files():
    return sorted((REPO / "envs").glob("*.yaml"))


def test_every_rule_uses_a_pinned_env():
    rules_text = "\n".join(p.read_text() for p in sorted((REPO / "workflow/rules").glob("*.smk")))
    blocks = re.split(r"^(?=rule \w+:)", rules_text, flags=re.M)[1:]
    jobs = [b for b in blocks if "\n    output:" in b]  # rules that make files (not target rules)
    assert len(jobs) > 5
    for block in jobs:
        name = block.split(":")[0]
        assert re.search(r"^    conda:\n        ENV$", block, flags=re.M), f"{name} has no conda: ENV"
        for directive in ("log:", "benchmark:", "resources:"):
            assert f"\n    {directive}" in block, f"{name} has no {directive}"
    env_line = re.search(r'^ENV = "(.+?)"', (REPO / "workflow/rules/common.smk").read_text(), flags=re.M)
    assert (REPO / "workflow/rules" / env_line.group(1)).resolve().is_file()


def test_env_pins_match_requirements():
    pins = _requirements()
    assert {"torch", "torchvision", "snakemake"} <= set(pins)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    for env_file in _env_files():
        env = yaml.safe_load(env_file.read_text())
        conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
        for dep in conda_deps:
            assert re.fullmatch(r"[\w.-]+=[\w.]+", dep), f"{env_file.name}: conda dependency {dep!r} is not exact"
        pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        env_pins = dict(p.lower().split("==") for p in pip)
        assert env_pins == pins, f"{env_file.name} differs from requirements.txt"
        python = next(d for d in conda_deps if d.startswith("python="))
        assert python.startswith("python=3.11")
