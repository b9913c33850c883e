#!/usr/bin/env python3
"""Where an idle TLS connection's memory goes: heap bytes per connection, by allocation site.

Starts one contender under `valgrind --tool=massif` (behind the same static nginx upstream as
the harness), opens N TLS keep-alive connections that each send one GET (what an agent holds
between check-ins), holds them past the node's idle release, takes a detailed snapshot
(`vgdb detailed_snapshot`), closes them, takes another, and prints the difference per
connection for every allocation path down to DEPTH frames.

    python3 bench/idle_massif.py               rpaas, 300 connections, depth 2
    python3 bench/idle_massif.py nginx         the same for nginx (same OpenSSL)
    MS_N=500 MS_DEPTH=8 python3 bench/idle_massif.py rpaas
Snapshots go to target/massif/. Loopback only; bounded in count and time.
"""
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST_A, ROOT, free_port, wait_port  # noqa: E402

N = int(os.environ.get("MS_N", "300"))
DEPTH = int(os.environ.get("MS_DEPTH", "2"))
OUT = os.path.join(ROOT, "target", "massif")


def parse(path):
    """Bytes per allocation path ("a <- b <- c") of a massif detailed snapshot."""
    out, stack = {}, []
    for line in open(path):
        m = re.match(r"^( *)n\d+: (\d+) (.*)$", line.rstrip("\n"))
        if not m:
            continue
        depth, size = len(m.group(1)), int(m.group(2))
        loc = re.sub(r"0x[0-9A-F]+: ", "", m.group(3))
        loc = re.sub(r"\(in /.*\)|\(.*?:\d+\)", "", loc).strip()[:150]
        stack = stack[:depth] + [loc]
        key = " <- ".join(stack[1:])
        out[key] = out.get(key, 0) + size
    return out


def main():
    who = sys.argv[1] if len(sys.argv) > 1 else "rpaas"
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="rpaas-massif-")
    os.chmod(tmp, 0o755)
    doc = harness.setup(tmp)
    subprocess.run(f"chmod -R a+rX {doc}", shell=True, check=True)
    geo = os.path.join(ROOT, "data", "country.mmdb")
    up_port, up_tls, port = free_port(), free_port(), free_port()
    open(f"{tmp}/upstream.conf", "w").write(harness.upstream_conf(tmp, doc, up_port, up_tls))
    up = harness.Proc("upstream", ["nginx", "-p", tmp, "-c", f"{tmp}/upstream.conf", "-g", "daemon off;"])
    if who == "nginx":
        conf = harness.nginx_proxy_conf(tmp, port, up_port, False, geo).replace(
            "worker_processes 1;", "worker_processes 1;\nmaster_process off;\ndaemon off;")
        open(f"{tmp}/proxy.conf", "w").write(conf)
        argv = ["nginx", "-p", tmp, "-c", f"{tmp}/proxy.conf"]
    else:
        open(f"{tmp}/proxy.toml", "w").write(harness.rpaas_conf(tmp, port, up_port, geo))
        argv = [os.path.join(ROOT, "target/release/rpaas"), "serve", "--config", f"{tmp}/proxy.toml"]
    held, after = f"{OUT}/{who}.held", f"{OUT}/{who}.after"
    p = subprocess.Popen(["valgrind", "--tool=massif", f"--massif-out-file={OUT}/{who}.out",
                          "--threshold=0.02"] + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_port(up_port)
        wait_port(port, timeout=180)
        loop = asyncio.new_event_loop()
        conns = loop.run_until_complete(harness.hold_idle(port, N, HOST_A, True))
        time.sleep(harness.IDLE_HOLD)
        subprocess.run(["vgdb", f"--pid={p.pid}", "detailed_snapshot", held], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        for _, w in conns:
            w.close()
        loop.run_until_complete(asyncio.sleep(0.5))
        time.sleep(6)
        subprocess.run(["vgdb", f"--pid={p.pid}", "detailed_snapshot", after], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
    finally:
        os.killpg(p.pid, 15)
        p.wait(timeout=60)
        up.stop()
    a, b = parse(held), parse(after)
    n = len(conns)
    print(f"{who}: {n} connections held")
    rows = sorted(((v - b.get(k, 0), k) for k, v in a.items() if k.count(" <- ") < DEPTH), reverse=True)
    for diff, k in rows:
        if diff < n * 100:
            break
        print(f"{diff / n:8.0f} B/conn  {k or '(all heap)'}")


if __name__ == "__main__":
    main()
