"""The study's report on the tiny run: self-contained HTML in a real browser, and the LaTeX PDF."""
import base64
import json
import re
import shutil
import subprocess

import pytest

from conftest import run_snakemake
from dgm.tasks.latex import build_dir, pdf_page_count

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]
IMAGE_PROBE = """<script>
window.addEventListener('load', () => document.body.setAttribute('data-images',
  JSON.stringify(Array.from(document.images, i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]))));
</script>"""


def _figures(tiny_run):
    """Stems of the figures copied beside report.tex (vector PDFs where the rule wrote one)."""
    return sorted(p.stem for p in (tiny_run / "results/report/figures").iterdir())


@pytest.mark.slow
def test_html_is_self_contained(tiny_run):
    html = (tiny_run / "results/report/report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the report references the network"
    assert "http://" not in html and "https://" not in html
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == len(_figures(tiny_run)) > 0
    for uri in uris:
        png = base64.b64decode(uri, validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium)")
def test_html_renders_every_figure_in_chromium(tiny_run, tmp_path):
    page = tmp_path / "report.html"
    page.write_text((tiny_run / "results/report/report.html").read_text().replace("</body>", IMAGE_PROBE + "</body>"))
    common = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-images="([^"]*)"', dom.stdout)
    assert found, "the page's load event never fired"
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == len(_figures(tiny_run))
    for alt, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"{alt} did not render"
    shot = tmp_path / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("latexmk") is None, reason="needs latexmk and TeX Live")
def test_pdf_compiles_with_every_figure(tiny_run):
    run_snakemake(tiny_run, "results/report/report.pdf", configfile=tiny_run / "tiny.yaml")
    pdf = tiny_run / "results/report/report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    tex = (tiny_run / "results/report/report.tex").read_text()
    included = re.findall(r"\\includegraphics\[[^]]*\]\{figures/([^}]+)\.pdf\}", tex)
    assert sorted(included) == _figures(tiny_run)  # every figure, each as a vector PDF
    log = (build_dir(pdf) / "report.log").read_text(errors="replace")  # latexmk's files stay in build/
    assert "undefined" not in log.lower().replace("undefined control", "")
    assert pdf_page_count(pdf) >= 2
    assert sorted(p.name for p in pdf.parent.glob("report.*")) == ["report.html", "report.pdf", "report.tex"]
    assert "$\\mathcal{L}_D" in tex  # maths typeset as maths


def test_pdf_step_names_the_fix_when_latexmk_is_missing(tmp_path, monkeypatch):
    from dgm.tasks import latex

    (tmp_path / "report.tex").write_text("\\documentclass{article}\\begin{document}x\\end{document}\n")
    monkeypatch.setattr(latex.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError) as err:
        latex.compile_pdf(tmp_path / "report.tex", tmp_path / "report.pdf")
    assert "apt-get install latexmk" in str(err.value) and "pdf: false" in str(err.value)
    assert not (tmp_path / "report.pdf").exists()
