"""A private MariaDB server that a test may stop and start."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pymysql

from dev.stack import free_port


class ThrowawayMariaDB:
    """A private MariaDB server in a temporary directory, on its own port, that
    a test may stop and start (never the machine's shared server)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/outage"

    @staticmethod
    def available() -> bool:
        return all(shutil.which(tool) for tool in ("mariadb-install-db", "mariadbd"))

    def install(self) -> None:
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={self.workdir / 'data'}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={self.workdir / 'data'}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.workdir / 'mysqld.sock'}",
                "--user=root",
                f"--log-error={self.workdir / 'error.log'}",
                "--innodb-buffer-pool-size=16M",
                "--skip-name-resolve",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root")
            except pymysql.err.OperationalError:
                time.sleep(0.1)
                continue
            with connection, connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE IF NOT EXISTS outage CHARACTER SET utf8mb4")
            return
        raise RuntimeError("the throwaway MariaDB did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None
