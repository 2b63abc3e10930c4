"""Two standalone control planes (as xdist workers would run them) at once, isolated, clean exit."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import boto3

from gameday.util.net import free_port, port_open
from gameday.util.procs import ProcessRegistry, pid_alive
from gameday.util.retry import wait_until


def _ready_url(log: Path, timeout: float = 30.0) -> str:
    found: list[str] = []

    def ready() -> bool:
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if line.startswith("READY "):
                found.append(line.split(" ", 1)[1].strip())
                return True
        return False

    wait_until(f"READY line in {log}", ready, timeout=timeout, interval=0.05)
    return found[0]


def test_two_control_planes_in_two_processes(tmp_path: Path) -> None:
    reg = ProcessRegistry(tmp_path)
    ports = [free_port(), free_port()]
    try:
        procs = [
            reg.spawn(
                f"cp{i}",
                [sys.executable, "-m", "gameday.controlplane", "--port", str(port)],
                log=tmp_path / f"cp{i}.log",
            )
            for i, port in enumerate(ports)
        ]
        urls = [_ready_url(tmp_path / f"cp{i}.log") for i in range(2)]
        assert urls == [f"http://127.0.0.1:{p}" for p in ports]
        clients = [
            boto3.client(
                "sqs",
                region_name="eu-south-1",
                endpoint_url=u,
                aws_access_key_id="test",
                aws_secret_access_key="test",
            )
            for u in urls
        ]
        clients[0].create_queue(QueueName="only-in-first")
        assert any("only-in-first" in u for u in clients[0].list_queues().get("QueueUrls", []))
        assert clients[1].list_queues().get("QueueUrls", []) == []
        for i, m in enumerate(procs):
            m.popen.send_signal(signal.SIGTERM)
            assert m.popen.wait(timeout=15) == 0
            reg.forget(f"cp{i}")
            assert not pid_alive(m.pid)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(port_open(p) for p in ports):
            time.sleep(0.05)
        assert not any(port_open(p) for p in ports)
    finally:
        reg.kill_all()
