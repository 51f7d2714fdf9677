"""`snippetvault --version` names the installed version."""

from __future__ import annotations

from importlib import metadata

import pytest

from bot.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"snippetvault {metadata.version('snippetvault')}"
