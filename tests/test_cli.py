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


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_ingest_exit_code_tells_partial_failure(tmp_path, capsys):
    good = _write(tmp_path, "good.txt", "西宁首届科技成果转移转化对接会闭幕，共签署59个项目合作协议。\n".encode())
    bad = [_write(tmp_path, f"bad{i}.txt", bytes(range(256)) * 4) for i in range(3)]
    assert main(["ingest", "--no-index", str(good)]) == 0
    assert main(["ingest", "--no-index", str(good), *map(str, bad)]) == 3  # 3 of 4 failed: not a success
    assert main(["ingest", "--no-index", *map(str, bad)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "binary" in out


def test_auth_file_that_does_not_exist_says_so(tmp_path, capsys):
    missing = tmp_path / "users.txt"
    assert main(["serve", "--auth", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and str(missing) in err
    assert main(["serve", "--auth", "justaname"]) == 2  # neither user:password nor a file
    assert "not found" in capsys.readouterr().err
