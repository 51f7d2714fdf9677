from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.settings import Settings, SmtpSecurity
from mail.transport import FileTransport, SmtpTransport, create_transport


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, **values)


def test_without_smtp_host_emails_become_files_under_the_data_dir(tmp_path: Path) -> None:
    transport = create_transport(settings(tmp_path, smtp_host=" "))

    assert isinstance(transport, FileTransport)
    assert transport.directory == tmp_path / "mail"


def test_with_smtp_host_emails_go_to_the_server(tmp_path: Path) -> None:
    transport = create_transport(
        settings(
            tmp_path,
            smtp_host="smtp.example.com",
            smtp_port=465,
            smtp_username="vault",
            smtp_password=SecretStr("hunter22"),
            smtp_security=SmtpSecurity.TLS,
        )
    )

    assert isinstance(transport, SmtpTransport)
    assert "hunter22" not in repr(transport)
