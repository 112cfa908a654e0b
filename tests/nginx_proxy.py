"""Debian's nginx in front of API replicas on loopback, configured from deploy/nginx/ exactly as compose
renders it (the template's variables substituted, the standalone nginx.conf around it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from string import Template

from pg_cluster import free_port
from services import unavailable

CONFIG = Path(__file__).parents[1] / "deploy" / "nginx"


def nginx_binary() -> str:
    """nginx's path; skips (fails under SPXCAST_REQUIRE_SERVICES=1) when it is not installed."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        unavailable("nginx is not installed (make system-deps)")
    return found


@contextmanager
def nginx_proxy(prefix: Path, upstream_ports: Sequence[int]) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """nginx listening on a free loopback port in front of ``upstream_ports``; yields (port, process) and
    stops it afterwards. ``prefix`` is its working directory (config, pid file, temp files)."""
    nginx = nginx_binary()
    (prefix / "tmp").mkdir(parents=True, exist_ok=True)
    listen = free_port()
    rendered = Template((CONFIG / "spxcast.conf.template").read_text()).safe_substitute(
        SPXCAST_LISTEN=f"127.0.0.1:{listen}",
        SPXCAST_UPSTREAMS="\n    ".join(
            f"server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;" for p in upstream_ports
        ),
    )
    (prefix / "spxcast.conf").write_text(rendered)
    shutil.copy(CONFIG / "nginx.conf", prefix / "nginx.conf")
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    command = [nginx, "-p", str(prefix), "-c", "nginx.conf", "-g", directives]
    test = subprocess.run([*command[:1], "-t", *command[1:]], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    proxy = subprocess.Popen(command)
    try:
        yield listen, proxy
    finally:
        proxy.terminate()
        proxy.wait(30)
