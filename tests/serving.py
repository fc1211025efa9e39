"""``edgecls serve`` started by a test: on 127.0.0.1, ``--port 0``, the client ready once the server says where
it listens (no sleeps)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from contextlib import contextmanager

import httpx


@contextmanager
def server(*args: str, env: dict | None = None):
    """``edgecls serve ARGS --port 0``; yields a client for it once it says where it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "edgecls", "serve", *args, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in proc.stderr:
            if "listening on " in line:
                url = line.split("listening on ")[1].split()[0]
                break
        else:
            raise AssertionError(f"the server ended before listening (exit {proc.wait()})")
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            for text in proc.stderr:
                lines.put(text)

        threading.Thread(target=read, daemon=True).start()
        with httpx.Client(base_url=url, timeout=30) as client:
            client.log = lines
            client.proc = proc
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)
