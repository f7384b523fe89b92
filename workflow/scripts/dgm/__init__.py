"""dgm: the importable library behind the workflow scripts.

Every module here is pure Python/PyTorch and never reads the ``snakemake`` global, so tests can
call it directly. Entry points in ``workflow/scripts/*.py`` unpack ``snakemake.*`` and call in.
"""
