"""Licence files and shipped tables: in the checkout, and in the wheel.

The quick tests read the checkout; the slow one builds the wheel with pip
(``pip wheel . --no-deps``), looks inside it, and imports casemix from the
unpacked wheel (an installed package, not this checkout) to list and load
the national scheme.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile

import pytest
from tests.conftest import REPO

from casemix.scheme import tables_root


def _shipped_folders() -> list[str]:
    return sorted(p.name for p in tables_root().iterdir() if p.is_dir())


def test_project_licence_is_apache_2():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert meta["project"]["license"] == {"text": "Apache-2.0"}
    text = (REPO / "LICENSE").read_text("utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "grouping_tables/chs-drg-1.1" in (REPO / "NOTICE").read_text("utf-8")


def test_every_shipped_table_folder_has_a_notice():
    folders = _shipped_folders()
    assert {"casemix-demo", "chs-drg-1.1", "dip-demo"} <= set(folders)
    for name in folders:
        notice = tables_root() / name / "NOTICE"
        assert notice.is_file() and notice.stat().st_size > 200, name


def test_package_data_covers_the_tables():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    assert "grouping_tables/**/*" in meta["tool"]["setuptools"]["package-data"]["casemix"]


@pytest.mark.slow
def test_wheel_holds_licences_and_tables_and_loads_the_national_scheme(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path / "wheel")],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("casemix-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    meta_dir = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    assert any(n.startswith(meta_dir) and n.endswith("/LICENSE") for n in names), sorted(names)
    assert any(n.startswith(meta_dir) and n.endswith("/NOTICE") for n in names), sorted(names)
    for folder in _shipped_folders():
        for path in (tables_root() / folder).iterdir():
            assert f"casemix/grouping_tables/{folder}/{path.name}" in names
    assert not any("/expected/" in n for n in names)  # the golden file is not shipped

    probe = (
        "import casemix, pathlib; s = casemix.load_scheme('chs-drg-1.1'); "
        "print(pathlib.Path(casemix.__file__).parent); print(casemix.schemes()); "
        "print(len(s.drgs), sum(map(len, s.drgs.values())), len(s.lists['grey.pdx']))"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    where, listed, counts = run.stdout.splitlines()
    assert where == str(tmp_path / "site" / "casemix")  # the wheel's copy, not the checkout
    assert "chs-drg-1.1" in listed and counts == "376 628 2695"
