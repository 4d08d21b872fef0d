"""The launchers themselves: what they make is valid, and a topology that
cannot start leaves nothing running."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from dev.topologies import HOST, ClusterTopology, StartError, TlsFiles


def test_the_certificate_chain_verifies(tls_files: TlsFiles) -> None:
    done = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tls_files.ca_cert), str(tls_files.cert)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_topology_that_cannot_start_stops_what_it_started(
    redis_binaries: None, tmp_path: Path
) -> None:
    topology = ClusterTopology(tmp_path / "cluster", replicas=0)
    taken = topology.nodes[2]
    with socket.socket() as squatter:
        squatter.bind((HOST, taken.port))
        squatter.listen()
        with pytest.raises(StartError, match=taken.name), topology:
            pytest.fail("the topology started although one of its ports was taken")
    assert all(node.process is None for node in topology.nodes)  # every one was reaped
    assert "Address already in use" in taken.log_file.read_text()
