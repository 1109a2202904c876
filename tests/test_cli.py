"""rag.cli: exit codes and messages of the command line (the library behind each command has its own tests)."""
from __future__ import annotations

from pathlib import Path

import pytest

from rag.cli import main


def test_serve_with_a_mistyped_index_is_an_error(tmp_path, capsys, monkeypatch):
    """Only the default index is built on first use; `rag serve --index <typo>` must not build one at the typo."""
    import ui.app

    monkeypatch.setattr(ui.app, "launch", lambda *a, **k: pytest.fail("the server must not start"))
    typo = tmp_path / "indx"
    assert main(["serve", "--index", str(typo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rag: no index at") and "rag ingest" in err
    assert not Path(typo).exists()
