"""Every fixtures/node/<case>/ directory is one behaviour of the Node analyzer."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.cases import case_dirs, run_case


@pytest.mark.parametrize("case", case_dirs("node"), ids=lambda p: p.name)
def test_node_case(case: Path, tmp_path: Path, update_goldens: bool) -> None:
    run_case(case, tmp_path, update_goldens)
