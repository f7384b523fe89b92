"""config report.pdf: auto builds the PDF where latexmk is found and otherwise skips it with one
warning (the main command succeeds without TeX); true without latexmk stops before any job, naming the
fix. latexmk's presence is set by PATH: a folder of links to every program on this PATH but
latexmk, and a stand-in latexmk where the test wants one."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import run_snakemake, write_config


def _dry_run(tmp_path, raw_dir, pdf, *, latexmk: bool):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for folder in os.environ["PATH"].split(os.pathsep):
        for program in Path(folder).glob("*") if Path(folder).is_dir() else []:
            link = bin_dir / program.name
            if program.name != "latexmk" and not link.exists() and not link.is_symlink():
                link.symlink_to(program)
    if latexmk:
        (bin_dir / "latexmk").write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / "latexmk").chmod(0o755)
    cfg = write_config(tmp_path, raw_dir, {"models": ["vae"], "report": {"pdf": pdf}})
    return run_snakemake(tmp_path, "-n", configfile=cfg, env={"PATH": str(bin_dir)}, check=False)


@pytest.mark.parametrize("pdf", ["auto", True])
def test_the_pdf_is_built_where_latexmk_is_found(tmp_path, tiny_raw_dir, pdf):
    proc = _dry_run(tmp_path, tiny_raw_dir, pdf, latexmk=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "report_pdf" in proc.stdout and "report.pdf is skipped" not in proc.stdout + proc.stderr


def test_auto_skips_the_pdf_without_latexmk_in_one_warning(tmp_path, tiny_raw_dir):
    proc = _dry_run(tmp_path, tiny_raw_dir, "auto", latexmk=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-2000:]
    assert "report_pdf" not in proc.stdout and "report_documents" in proc.stdout
    assert out.count("report.pdf is skipped: latexmk is not installed") == 1
    assert "apt-get install latexmk" in out and "report={pdf: true}" in out


def test_true_without_latexmk_stops_before_any_job_naming_the_fix(tmp_path, tiny_raw_dir):
    proc = _dry_run(tmp_path, tiny_raw_dir, True, latexmk=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key report.pdf: true, but latexmk is not installed" in out and "apt-get install latexmk" in out
    assert not (tmp_path / "results").exists()
