"""Rule report_pdf: compile the report's LaTeX source with latexmk."""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("dgm")

INSTALL_HINT = (
    "latexmk is not installed, so report.pdf cannot be built. Install it (Debian/Ubuntu: "
    "`apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended`, about 25 s; "
    "conda: `conda install -c conda-forge texlive-core latexmk`), or switch the PDF off with "
    "`--config 'report={pdf: false}'` (report.html and report.tex are still built)."
)
PROBLEMS = re.compile(r"(undefined references|Reference `[^']+' on page \d+ undefined|Citation `[^']+' .* undefined)")


def build_dir(pdf_path: str | Path) -> Path:
    """Where latexmk writes its auxiliary files and log for ``pdf_path``: a ``build`` folder beside it."""
    return Path(pdf_path).parent / "build"


def compile_pdf(tex_path: str | Path, pdf_path: str | Path, *, timeout: float = 600) -> Path:
    """latexmk -pdf in the source's folder, every auxiliary file (and the log) in ``build_dir``, the
    PDF then moved to ``pdf_path``; fail on LaTeX errors and on undefined references."""
    tex_path, pdf_path = Path(tex_path).resolve(), Path(pdf_path).resolve()
    latexmk = shutil.which("latexmk")
    if latexmk is None or shutil.which("pdflatex") is None:
        raise RuntimeError(INSTALL_HINT)
    build = build_dir(pdf_path)
    build.mkdir(parents=True, exist_ok=True)
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
           f"-jobname={pdf_path.stem}", f"-outdir={build}", tex_path.name]
    log.info("running %s in %s", " ".join(cmd), tex_path.parent)
    proc = subprocess.run(cmd, cwd=tex_path.parent, capture_output=True, text=True, timeout=timeout)
    latex_log = build / f"{pdf_path.stem}.log"
    log_text = latex_log.read_text(errors="replace") if latex_log.exists() else ""
    if proc.returncode != 0:
        errors = [line for line in log_text.splitlines()
                  if line.startswith("!") or ":" in line and "error" in line.lower()]
        raise RuntimeError(f"latexmk failed on {tex_path} (exit {proc.returncode}; log {latex_log}):\n"
                           + "\n".join(errors[:20]) + f"\n--- latexmk output (tail) ---\n{proc.stdout[-3000:]}")
    problems = sorted(set(m.group(0) for m in PROBLEMS.finditer(log_text)))
    if problems:
        raise RuntimeError(f"{tex_path}: LaTeX reports " + "; ".join(problems))
    built = build / pdf_path.name
    if not built.exists() or built.stat().st_size == 0:
        raise RuntimeError(f"latexmk succeeded but wrote no {built}")
    shutil.copyfile(built, pdf_path)  # a copy: latexmk's next run compares against the one it built
    return pdf_path


def pdf_page_count(pdf_path: str | Path) -> int:
    """Pages of a PDF that ``compile_pdf`` built, from pdflatex's log in ``build_dir``
    ("Output written on x.pdf (N pages, ...)")."""
    latex_log = build_dir(pdf_path) / f"{Path(pdf_path).stem}.log"
    text = latex_log.read_text(errors="replace")
    m = re.search(r"Output written on .*?\((\d+) pages?", text.replace("\n", ""))
    if m is None:
        raise RuntimeError(f"no page count in {latex_log}")
    return int(m.group(1))
