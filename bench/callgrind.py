#!/usr/bin/env python3
"""Per-request instruction counts of whole proxies under `valgrind --tool=callgrind`.

Seconds on this shared 2-core machine are noisy; instruction counts are repeatable. Each
contender runs under callgrind against the same nginx upstream; after a warm-up the counters
are zeroed (`callgrind_control -z`), a bounded number of requests is sent over one TLS 1.3
keep-alive connection (or one connection per request for the handshake rows), and the dump's
total divided by the count is the cost per request, everything included (TLS, HTTP parsing,
policy, IPS, logging, upstream I/O). The dump is kept so `callgrind_annotate --inclusive=yes`
shows where the instructions go.

    python3 bench/callgrind.py                      every contender, 300 requests each
    python3 bench/callgrind.py rpaas nginx          some
    CG_N=1000 python3 bench/callgrind.py rpaas      more requests
Writes bench/results/callgrind-<stamp>.md (and callgrind.latest.md); dumps under
target/callgrind/. Loopback only; every run is bounded in count and time.
"""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import HOST_A, HOST_B, ROOT, free_port, wait_port  # noqa: E402

N = int(os.environ.get("CG_N", "300"))
WARM = 30
OUT = os.path.join(ROOT, "target", "callgrind")


def request(host, path, close=False):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n"
            f"Accept: */*\r\n{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n").encode()


def read_response(s, buf=b""):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed before the head")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed in the body")
        rest += d
    return status, rest[length:]


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.set_alpn_protocols(["http/1.1"])
    return c


def keepalive(port, host, path, n):
    c = ctx()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        with c.wrap_socket(raw, server_hostname=host) as s:
            rest = b""
            for _ in range(n):
                s.sendall(request(host, path))
                status, rest = read_response(s, rest)
                if status != 200:
                    raise RuntimeError(f"status {status}")


def per_connection(port, host, path, n, resume):
    c = ctx()
    session = None
    resumed = 0
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
            with c.wrap_socket(raw, server_hostname=host, session=session if resume else None) as s:
                s.sendall(request(host, path, close=True))
                status, _ = read_response(s)
                if status != 200:
                    raise RuntimeError(f"status {status}")
                resumed += 1 if s.session_reused else 0
                session = s.session
    return resumed


def total_ir(pid):
    """Dumps the counters of `pid` and returns the instructions since the last zeroing."""
    before = set(os.listdir(OUT))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True, timeout=60)
    deadline = time.time() + 30
    while time.time() < deadline:
        new = sorted(set(os.listdir(OUT)) - before)
        for f in new:
            txt = open(os.path.join(OUT, f), errors="replace").read()
            for line in txt.splitlines():
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1]), os.path.join(OUT, f)
        time.sleep(0.2)
    raise RuntimeError("no callgrind dump")


def zero(pid):
    subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True, timeout=60)


def contenders(tmp, up_port, geo):
    """name -> (argv, port, environment or None). rpaas variants switch one stage off each."""
    bin_ = os.path.join(ROOT, "target/release/rpaas")
    bare = os.path.join(ROOT, "target/release/rpaas-bare-proxy")
    out = {}

    def rpaas(name, crs=False, edit=None, env=None):
        port = free_port()
        conf = harness.rpaas_conf(tmp, port, up_port, geo, crs=crs).replace(f"{tmp}/rpaas", f"{tmp}/{name}")
        if edit:
            conf = edit(conf)
        path = f"{tmp}/{name}.toml"
        open(path, "w").write(conf)
        out[name] = ([bin_, "serve", "--config", path], port, env)

    rpaas("rpaas")
    # The access line off (the rest of the log stays).
    rpaas("rpaas_no_log", env={"RPAAS_LOG": "info,rpaas::access=off,pingora_core=off,pingora_proxy=off,pingora=off"})
    rpaas("rpaas_no_ips", edit=lambda c: c.replace('deployment = "all-traffic"',
                                                   'deployment = "all-traffic"\n[instance.ips]\nmode = "off"'))
    rpaas("rpaas_no_geoip", edit=lambda c: c.replace(f'geoip_db = "{geo}"\n', "").replace(
        'default_countries = ["US", "CA", "GB", "DE"]\n', ""))
    rpaas("rpaas_no_harden", edit=lambda c: c.replace("[node]\n", '[node]\nstrip_headers = []\nhsts = "off"\n'))
    rpaas("rpaas_crs", crs=True)
    if os.path.exists(bare):
        port = free_port()
        out["bare_pingora"] = ([bare, "--listen", f"127.0.0.1:{port}", "--cert", f"{tmp}/cert.pem", "--key",
                                f"{tmp}/key.pem", "--upstream", f"127.0.0.1:{up_port}"], port, None)
    for name, crs in [("nginx", False), ("nginx_crs", True)]:
        port = free_port()
        conf = harness.nginx_proxy_conf(tmp, port, up_port, crs, geo).replace(
            "worker_processes 1;", "worker_processes 1;\nmaster_process off;\ndaemon off;")
        path = f"{tmp}/cg_{name}.conf"
        open(path, "w").write(conf)
        out[name] = (["nginx", "-p", tmp, "-c", path], port, None)
    return out


def measure(name, argv, port, env, host, path):
    os.makedirs(OUT, exist_ok=True)
    outfile = os.path.join(OUT, f"{name}.%p")
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={outfile}",
                          "--dump-instr=no", "--collect-atstart=yes"] + argv,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env=dict(os.environ, **(env or {})))
    try:
        wait_port(port, timeout=180)
        keepalive(port, host, path, WARM)
        per_connection(port, host, path, 3, resume=True)
        row = {}
        zero(p.pid)
        keepalive(port, host, path, N)
        ir, dump = total_ir(p.pid)
        row["keepalive"] = ir / N
        row["dump"] = dump
        zero(p.pid)
        n_conn = max(10, N // 10)
        per_connection(port, host, path, n_conn, resume=False)
        ir, _ = total_ir(p.pid)
        row["full_handshake"] = ir / n_conn
        zero(p.pid)
        resumed = per_connection(port, host, path, n_conn, resume=True)
        ir, _ = total_ir(p.pid)
        row["resumed"] = ir / n_conn
        row["resumed_share"] = resumed / n_conn
        return row
    finally:
        try:
            os.killpg(p.pid, 15)
            p.wait(timeout=30)
        except Exception:
            os.killpg(p.pid, 9)


def main():
    want = [a for a in sys.argv[1:] if not a.startswith("-")]
    tmp = tempfile.mkdtemp(prefix="rpaas-cg-")
    os.chmod(tmp, 0o755)
    doc = harness.setup(tmp)
    subprocess.run(f"chmod -R a+rX {doc}", shell=True, check=True)
    geo = os.path.join(ROOT, "data", "country.mmdb")
    if not os.path.exists(geo):
        sys.exit("data/country.mmdb is missing: run scripts/fetch-geoip.sh")
    up_port, up_tls = free_port(), free_port()
    open(f"{tmp}/upstream.conf", "w").write(harness.upstream_conf(tmp, doc, up_port, up_tls))
    up = harness.Proc("upstream", ["nginx", "-p", tmp, "-c", f"{tmp}/upstream.conf", "-g", "daemon off;"])
    rows = {}
    try:
        wait_port(up_port)
        for name, (argv, port, env) in contenders(tmp, up_port, geo).items():
            if want and name not in want:
                continue
            for scen, host, path in [("get_1k", HOST_A, "/automate/small.bin"),
                                     ("agent_only_get", HOST_B, "/LabTech/Agent.aspx")]:
                if scen == "agent_only_get" and not name.startswith("rpaas"):
                    host = HOST_A
                r = measure(name, argv, port, env, host, path)
                rows.setdefault(name, {})[scen] = r
                print(f"{name:16} {scen:15} keep-alive {r['keepalive']:>10.0f}  full handshake "
                      f"{r['full_handshake']:>10.0f}  resumed {r['resumed']:>10.0f} ({r['resumed_share']:.0%})",
                      flush=True)
    finally:
        up.stop()
    report(rows)


def report(rows):
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    anchor = rows.get("nginx", {})
    lines = [f"# Instructions per request under callgrind, {stamp}", "",
             f"`python3 bench/callgrind.py` ({N} keep-alive requests after {WARM} warm-up; {max(10, N // 10)} "
             "connections with one request each for the handshake columns). Ratios are against nginx in "
             "the same run.", "",
             "| contender | scenario | keep-alive instr/req | vs nginx | new connection, full handshake | "
             "vs nginx | new connection, resumed | resumed |",
             "|---|---|---|---|---|---|---|---|"]
    for name, per in rows.items():
        for scen, r in per.items():
            a = anchor.get(scen) or anchor.get("get_1k") or {}
            def ratio(k):
                return f"{r[k] / a[k]:.2f}x" if a.get(k) else "-"
            lines.append(f"| {name} | {scen} | {r['keepalive']:,.0f} | {ratio('keepalive')} | "
                         f"{r['full_handshake']:,.0f} | {ratio('full_handshake')} | {r['resumed']:,.0f} | "
                         f"{r['resumed_share']:.0%} |")
    md = "\n".join(lines) + "\n"
    d = os.path.join(ROOT, "bench", "results")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, f"callgrind-{stamp}.md"), "w").write(md)
    open(os.path.join(d, "callgrind.latest.md"), "w").write(md)
    print(md)


if __name__ == "__main__":
    main()
