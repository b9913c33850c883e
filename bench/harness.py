#!/usr/bin/env python3
"""The whole-process benchmark: rpaas vs nginx vs nginx+ModSecurity/CRS vs direct.

Every contender is pinned to core 0 with the upstream; load generators run on core 1. Same
ECDSA P-256 certificate, TLS 1.3, HTTP/1.1 keep-alive (unless the scenario says otherwise).
Loopback only; every run is bounded in time.
"""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = "--quick" in sys.argv
DUR = 3 if QUICK else 10
REPEATS = 1 if QUICK else 3
def _idle_n():
    """20k idle connections, or as many as this machine's file-descriptor limit allows (the
    client and the proxy each hold one descriptor per connection)."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = 1000 if QUICK else 20000
    return max(100, min(want, hard - 1000)) if hard != resource.RLIM_INFINITY else want


IDLE_N = _idle_n()
# Seconds idle connections are held before RSS is read: past the node's idle release (5 s
# idle, then up to 5 s to the timer and 5 s to the next allocator trim).
IDLE_HOLD = 16.0
CONNS = 32
HOST_A = "bench-a.example.net"
HOST_B = "bench-b.example.net"
CORE_SERVER = "0"
CORE_LOAD = "1" if (os.cpu_count() or 1) > 1 else "0"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


class Proc:
    def __init__(self, name, argv, env=None):
        self.name = name
        self.p = subprocess.Popen(["taskset", "-c", CORE_SERVER] + argv, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=env, start_new_session=True)

    def pids(self):
        """The process and its children (nginx workers)."""
        if getattr(self, "_pids", None):
            return self._pids
        out = [self.p.pid]
        try:
            kids = subprocess.run(["pgrep", "-P", str(self.p.pid)], capture_output=True, text=True).stdout.split()
            out += [int(k) for k in kids]
        except Exception:
            pass
        if len(out) > 1 or self.name == "rpaas":
            self._pids = out
        return out

    def cpu(self):
        t = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in self.pids():
            try:
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                t += (int(f[11]) + int(f[12])) / tick
            except Exception:
                pass
        return t

    def rss_kib(self):
        t = 0
        for pid in self.pids():
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmRSS:"):
                        t += int(line.split()[1])
            except Exception:
                pass
        return t

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(timeout=10)
        except Exception:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except Exception:
                pass


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def setup(tmp):
    # One certificate for every contender.
    sh(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN={HOST_A} "
       f"-addext subjectAltName=DNS:{HOST_A},DNS:{HOST_B} -keyout {tmp}/key.pem -out {tmp}/cert.pem", capture_output=True)
    doc = f"{tmp}/www"
    for d in ["automate", "LabTech"]:
        os.makedirs(f"{doc}/{d}", exist_ok=True)
    open(f"{doc}/automate/small.bin", "wb").write(b"x" * 1024)
    open(f"{doc}/automate/big.bin", "wb").write(b"x" * 65536)
    open(f"{doc}/LabTech/Agent.aspx", "wb").write(b"LabTech|240.120" + b" " * 1009)
    body = "&".join(f"field{i}=" + "v" * 150 for i in range(100))[:16384]
    open(f"{tmp}/post.lua", "w").write(
        'wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n' % body)
    return doc


NGINX_COMMON = """
worker_processes 1;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
{modules}
events {{ worker_connections 65536; }}
worker_rlimit_nofile 20000;
http {{
  access_log {tmp}/{name}.access.log;
  client_body_temp_path {tmp}/{name}_body;
  proxy_temp_path {tmp}/{name}_proxy;
  fastcgi_temp_path {tmp}/{name}_fcgi;
  uwsgi_temp_path {tmp}/{name}_uwsgi;
  scgi_temp_path {tmp}/{name}_scgi;
  keepalive_requests 1000000;
  # Long enough that idle connections outlive the idle measure's open phase (see rpaas_conf).
  keepalive_timeout 600s;
  client_header_timeout 600s;
  client_max_body_size 1m;
  {http_extra}
  {servers}
}}
"""


def upstream_conf(tmp, doc, port, tls_port):
    servers = f"""
  server {{
    listen 127.0.0.1:{port};
    listen 127.0.0.1:{tls_port} ssl http2;
    ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem; ssl_protocols TLSv1.3;
    root {doc};
    access_log off;
    location = /automate/post {{ return 200 "ok"; }}
    location = /LabTech/Agent.aspx {{ if ($request_method = POST) {{ return 200 "ok"; }} }}
  }}"""
    return NGINX_COMMON.format(tmp=tmp, name="upstream", modules="", http_extra="", servers=servers)


def nginx_proxy_conf(tmp, port, up_port, crs, geo):
    modules = ""
    http_extra = f"upstream up {{ server 127.0.0.1:{up_port}; keepalive 64; }}"
    waf = ""
    if crs:
        modules = ("load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;\n"
                   "load_module /usr/lib/nginx/modules/ngx_http_geoip2_module.so;")
        main = f"{tmp}/modsec-main.conf"
        open(main, "w").write(
            "SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 13107200\n"
            "SecRequestBodyNoFilesLimit 131072\nSecRequestBodyLimitAction Reject\nSecResponseBodyAccess Off\n"
            f"SecTmpDir {tmp}\nSecDataDir {tmp}\nSecAuditEngine Off\nSecArgumentSeparator &\nSecCookieFormat 0\n"
            "SecUnicodeMapFile /usr/share/modsecurity-crs/util/unicode.mapping 20127\n" if os.path.exists("/usr/share/modsecurity-crs/util/unicode.mapping") else
            "SecRuleEngine On\nSecRequestBodyAccess On\nSecRequestBodyLimit 13107200\nSecRequestBodyNoFilesLimit 131072\n"
            f"SecResponseBodyAccess Off\nSecTmpDir {tmp}\nSecDataDir {tmp}\nSecAuditEngine Off\n")
        open(main, "a").write("Include /etc/modsecurity/crs/crs-setup.conf\nInclude /usr/share/modsecurity-crs/rules/*.conf\n")
        http_extra += f"""
  geoip2 {geo} {{ $geo_cc country_code; }}
  map $geo_cc $geo_ok {{ default 1; "CN" 0; "RU" 0; }}"""
        waf = f"modsecurity on; modsecurity_rules_file {main};\n    if ($geo_ok = 0) {{ return 403; }}"
    servers = f"""
  server {{
    listen 127.0.0.1:{port} ssl http2 backlog=65535;
    ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem; ssl_protocols TLSv1.3;
    server_tokens off;
    {waf}
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }}
  }}"""
    name = "nginx_crs" if crs else "nginx"
    return NGINX_COMMON.format(tmp=tmp, name=name, modules=modules, http_extra=http_extra, servers=servers)


def rpaas_conf(tmp, port, up_port, geo, crs=False):
    # rpaas_crs: the same node with the OWASP CRS (PL1, Automate exclusions) beside the shipped
    # rules, the same rules nginx_crs runs.
    crs_table = '[node.ips]\ncrs = "/usr/share/modsecurity-crs"\n' if crs else ""
    name = "rpaas_crs" if crs else "rpaas"
    return f"""
{crs_table}
[node]
log = "{tmp}/{name}.access.log"
threads = 1
# The idle measure opens up to 20k connections (minutes on a busy machine) and holds them:
# every contender keeps idle connections open longer than that (nginx the same). Pingora still
# closes a connection that sends no request head within 60 s: a round in which any connection
# was closed before RSS is read gets no figure.
header_timeout = "600s"
keepalive_timeout = "600s"
geoip_db = "{geo}"
default_countries = ["US", "CA", "GB", "DE"]
unknown_country = "allow"
[node.limits]
login = "off"
ban_after = 0

[[listener]]
address = "127.0.0.1:{port}"
tls = "modern"
default_host = "{HOST_A}"

[[instance]]
id = "alltraffic"
hostnames = ["{HOST_A}"]
cert = "{tmp}/cert.pem"
key = "{tmp}/key.pem"
upstream = "http://127.0.0.1:{up_port}"
deployment = "all-traffic"

[[instance]]
id = "agentonly"
hostnames = ["{HOST_B}"]
cert = "{tmp}/cert.pem"
key = "{tmp}/key.pem"
upstream = "http://127.0.0.1:{up_port}"
deployment = "agent-only"
"""


def wrk(url, host, extra=(), script=None, conns=CONNS, dur=DUR):
    cmd = ["taskset", "-c", CORE_LOAD, "wrk", "-t1", f"-c{conns}", f"-d{dur}s", "--latency", "-H", f"Host: {host}"]
    for h in extra:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=dur + 60).stdout
    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return None
        v = float(m.group(1))
        return v / 1000.0 if m.group(2) == "us" else v * 1000.0 if m.group(2) == "s" else v
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": int(total.group(1)) if total else 0,
        "p50_ms": lat(50), "p99_ms": lat(99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def h2load(url, host, n):
    cmd = ["taskset", "-c", CORE_LOAD, "h2load", "-c", "16", "-m", "10", "-n", str(n), "-H", f":authority: {host}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded", out)
    s2 = re.search(r"status codes: (\d+) 2xx", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "requests": int(ok.group(1)) if ok else 0,
            "status_2xx": int(s2.group(1)) if s2 else 0}


async def hold_idle(port, n, host, request=False):
    """Opens `n` TLS connections and keeps them; with `request`, each first sends one GET and
    reads its response (what an agent's connection looks like between check-ins)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    sem = asyncio.Semaphore(64)
    conns = []

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=host), 20)
                if request:
                    w.write(f"GET /automate/small.bin HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 20)
                    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                    await asyncio.wait_for(r.readexactly(int(m.group(1)) if m else 0), 20)
                conns.append((r, w))
            except Exception:
                pass
    await asyncio.gather(*(one() for _ in range(n)))
    return conns


def idle_rss(proc, port, n, host):
    """KiB per idle connection: never used, then after one request each (held for IDLE_HOLD s,
    past the node's idle buffer release)."""
    out = {}
    # One baseline for both rounds: the second reuses memory the first freed to the allocator,
    # so its own before/after difference would understate it (the second round holds more).
    base = proc.rss_kib()
    for request in (False, True):
        loop = asyncio.new_event_loop()
        t0 = time.time()
        conns = loop.run_until_complete(hold_idle(port, n, host, request))
        opening_s = round(time.time() - t0, 1)
        time.sleep(IDLE_HOLD)
        held = proc.rss_kib()
        # Connections the server closed meanwhile show EOF once the loop reads again; only
        # open ones count.
        loop.run_until_complete(asyncio.sleep(0.5))
        still_open = sum(1 for r, _ in conns if not r.at_eof())
        for _, w in conns:
            w.close()
        loop.run_until_complete(asyncio.sleep(0.5))
        loop.close()
        time.sleep(1.0)
        key = "after_request" if request else "never_used"
        # Memory of connections the server already closed is not all back with the OS: a
        # figure from a round where any closed would be wrong either way, so it gets none.
        per_conn = round((held - base) / max(1, len(conns)), 2) if still_open == len(conns) else None
        out[key] = {"opened": len(conns), "opening_s": opening_s, "still_open": still_open,
                    "rss_base_kib": base, "rss_held_kib": held, "kib_per_conn": per_conn}
    # The first figure under its old name, for earlier results' readers.
    out.update(out["never_used"])
    return out


def main():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except Exception:
        pass
    tmp = tempfile.mkdtemp(prefix="rpaas-bench-")
    # nginx workers run as nobody: they must be able to read the document root.
    os.chmod(tmp, 0o755)
    doc = setup(tmp)
    sh(f"chmod -R a+rX {doc}")
    geo = os.path.join(ROOT, "data", "country.mmdb")
    if not os.path.exists(geo):
        # A small stand-in database so the GeoIP code paths still run.
        sys.exit("data/country.mmdb is missing: run scripts/fetch-geoip.sh")
    up_port, up_tls = free_port(), free_port()
    ports = {"rpaas": free_port(), "rpaas_crs": free_port(), "bare_pingora": free_port(), "nginx": free_port(),
             "nginx_crs": free_port(), "direct": up_tls}
    open(f"{tmp}/upstream.conf", "w").write(upstream_conf(tmp, doc, up_port, up_tls))
    open(f"{tmp}/nginx.conf", "w").write(nginx_proxy_conf(tmp, ports["nginx"], up_port, False, geo))
    open(f"{tmp}/nginx_crs.conf", "w").write(nginx_proxy_conf(tmp, ports["nginx_crs"], up_port, True, geo))
    open(f"{tmp}/rpaas.toml", "w").write(rpaas_conf(tmp, ports["rpaas"], up_port, geo))
    open(f"{tmp}/rpaas_crs.toml", "w").write(rpaas_conf(tmp, ports["rpaas_crs"], up_port, geo, crs=True))
    for c in ["upstream", "nginx", "nginx_crs"]:
        sh(f"nginx -t -q -p {tmp} -c {tmp}/{c}.conf", capture_output=True)
    procs = {
        "upstream": Proc("upstream", ["nginx", "-p", tmp, "-c", f"{tmp}/upstream.conf", "-g", "daemon off;"]),
        "nginx": Proc("nginx", ["nginx", "-p", tmp, "-c", f"{tmp}/nginx.conf", "-g", "daemon off;"]),
        "nginx_crs": Proc("nginx_crs", ["nginx", "-p", tmp, "-c", f"{tmp}/nginx_crs.conf", "-g", "daemon off;"]),
        "rpaas": Proc("rpaas", [os.path.join(ROOT, "target/release/rpaas"), "serve", "--config", f"{tmp}/rpaas.toml"]),
        "rpaas_crs": Proc("rpaas_crs", [os.path.join(ROOT, "target/release/rpaas"), "serve", "--config",
                                        f"{tmp}/rpaas_crs.toml"]),
    }
    # The framework's own cost: Pingora's TLS listener and proxy with nothing of rpaas's.
    procs["bare_pingora"] = Proc("bare_pingora", [os.path.join(ROOT, "target/release/rpaas-bare-proxy"), "--listen",
                                                  f"127.0.0.1:{ports['bare_pingora']}", "--cert", f"{tmp}/cert.pem",
                                                  "--key", f"{tmp}/key.pem", "--upstream", f"127.0.0.1:{up_port}"])
    procs["direct"] = procs["upstream"]
    try:
        for name, port in ports.items():
            wait_port(port)
        wait_port(up_port)
        contenders = ["rpaas", "rpaas_crs", "bare_pingora", "nginx", "nginx_crs", "direct"]
        if os.environ.get("BENCH_ONLY") == "idle":
            for c in ["rpaas", "nginx"]:
                print(f"idle {c:10} {idle_rss(procs[c], ports[c], IDLE_N, HOST_A)}", flush=True)
            return
        scenarios = [
            ("get_1k", "/automate/small.bin", HOST_A, (), None),
            ("get_64k", "/automate/big.bin", HOST_A, (), None),
            ("agent_only_get", "/LabTech/Agent.aspx", HOST_B, (), None),
            ("post_16k_form", "/automate/post", HOST_A, (), f"{tmp}/post.lua"),
            ("new_tls_per_request", "/automate/small.bin", HOST_A, ("Connection: close",), None),
        ]
        # BENCH_ONLY=crs: the CRS contenders alone on the scenarios the CRS goal names (the
        # whole-process CPU of rpaas + CRS against nginx + ModSecurity + CRS), in a few minutes.
        crs_only = os.environ.get("BENCH_ONLY") == "crs"
        if crs_only:
            contenders = ["rpaas", "rpaas_crs", "nginx_crs"]
            scenarios = [s for s in scenarios if s[0] in ("get_1k", "agent_only_get", "post_16k_form")]
        # Sanity: every contender answers every scenario with 200.
        for c in contenders:
            for sname, path, host, extra, script in scenarios:
                r = wrk(f"https://127.0.0.1:{ports[c]}{path}", host, extra, script, conns=1, dur=1)
                if r["non2xx"] or r["socket_errors"] or r["requests"] == 0:
                    print(f"warning: {c} {sname}: {r}", file=sys.stderr)
        results = {}
        for sname, path, host, extra, script in scenarios:
            for rep in range(REPEATS):
                order = contenders[rep % len(contenders):] + contenders[:rep % len(contenders)]
                for c in order:
                    cpu0 = procs[c].cpu()
                    r = wrk(f"https://127.0.0.1:{ports[c]}{path}", host, extra, script)
                    cpu = procs[c].cpu() - cpu0
                    r["cpu_s_per_10k"] = round(cpu / max(1, r["requests"]) * 10000, 3)
                    r["rss_kib"] = procs[c].rss_kib()
                    results.setdefault(sname, {}).setdefault(c, []).append(r)
                    print(f"{sname:22} {c:10} {r['rps']:10.0f} req/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
                          f"cpu/10k {r['cpu_s_per_10k']} s non2xx {r['non2xx']} err {r['socket_errors']}", flush=True)
        if crs_only:
            print("scenario               rpaas_crs/nginx_crs CPU per request   req/s")
            for sname in results:
                cpu = {c: median([r["cpu_s_per_10k"] for r in results[sname][c]]) for c in contenders}
                rps = {c: median([r["rps"] for r in results[sname][c]]) for c in contenders}
                ratio = cpu["rpaas_crs"] / cpu["nginx_crs"] if cpu["nginx_crs"] else float("nan")
                print(f"{sname:22} {ratio:8.3f}x   cpu/10k rpaas {cpu['rpaas']} s, rpaas_crs {cpu['rpaas_crs']} s, "
                      f"nginx_crs {cpu['nginx_crs']} s; req/s {rps['rpaas']:.0f} / {rps['rpaas_crs']:.0f} / "
                      f"{rps['nginx_crs']:.0f}", flush=True)
            return
        paced = paced_latency(results, ports, tmp)
        h2 = {}
        for c in contenders:
            h2[c] = h2load(f"https://127.0.0.1:{ports[c]}/automate/small.bin", HOST_A, 20000 if QUICK else 100000)
            print(f"h2load {c:10} {h2[c]['rps']:10.0f} req/s", flush=True)
        idle = {}
        for c in ["rpaas", "nginx", "nginx_crs"]:
            idle[c] = idle_rss(procs[c], ports[c], IDLE_N, HOST_A)
            print(f"idle {c:10} {idle[c]}", flush=True)
        report(results, h2, idle, paced)
    finally:
        for p in procs.values():
            p.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


PACE_MS = 5


def paced_latency(results, ports, tmp):
    """Latency at half of nginx's peak 1 KiB GET rate: every connection waits PACE_MS between
    a response and its next request (wrk's `delay()`), with as many connections as would give
    that rate. The pacing is the same for every contender, but each connection waits for its
    response, so a slower contender is offered less: the table shows the rate each got. p99 over
    `direct` is what the proxy adds."""
    peak = median([r["rps"] for r in results.get("get_1k", {}).get("nginx", [])]) or 0
    if not peak:
        return {}
    rate = peak / 2
    conns = max(1, round(rate * PACE_MS / 1000))
    script = f"{tmp}/paced.lua"
    open(script, "w").write(f"function delay()\n  return {PACE_MS}\nend\n")
    out = {"target_rps": round(rate), "conns": conns, "runs": {}}
    for rep in range(REPEATS):
        for c in ["direct", "nginx", "bare_pingora", "rpaas"]:
            r = wrk(f"https://127.0.0.1:{ports[c]}/automate/small.bin", HOST_A, (), script, conns=conns)
            out["runs"].setdefault(c, []).append(r)
            print(f"paced {c:10} {r['rps']:10.0f} req/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms", flush=True)
    out["median"] = {c: {k: median([r[k] for r in runs]) for k in ["rps", "p50_ms", "p99_ms"]}
                     for c, runs in out["runs"].items()}
    return out


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def report(results, h2, idle, paced=None):
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    summary = {}
    lines = [f"# rpaas benchmark {stamp}{' (quick)' if QUICK else ''}", "",
             f"Machine: {os.cpu_count()} cores, `{os.uname().release}`; proxies and upstream pinned to core {CORE_SERVER}, "
             f"load generator on core {CORE_LOAD}. wrk -t1 -c{CONNS} -d{DUR}s, {REPEATS} repeat(s), medians.", "",
             "| scenario | contender | req/s | p50 ms | p99 ms | CPU s / 10k req | RSS MiB | non-2xx |",
             "|---|---|---|---|---|---|---|---|"]
    for sname, per in results.items():
        summary[sname] = {}
        for c, runs in per.items():
            m = {k: median([r[k] for r in runs]) for k in ["rps", "p50_ms", "p99_ms", "cpu_s_per_10k", "rss_kib"]}
            m["non2xx"] = sum(r["non2xx"] for r in runs)
            summary[sname][c] = m
            lines.append(f"| {sname} | {c} | {m['rps']:.0f} | {m['p50_ms']} | {m['p99_ms']} | {m['cpu_s_per_10k']} | "
                         f"{(m['rss_kib'] or 0) / 1024:.1f} | {m['non2xx']} |")
    lines += ["", "Ratios (req/s; CPU per request, lower is better):", "",
              "| scenario | rpaas/nginx | rpaas/nginx+CRS | rpaas/direct | CPU rpaas/nginx | CPU rpaas/nginx+CRS | CPU rpaas+CRS/nginx+CRS | CPU bare Pingora/nginx |",
              "|---|---|---|---|---|---|---|---|"]
    for sname, per in summary.items():
        r = per.get("rpaas", {})
        def ratio(a, b, k):
            return f"{a[k] / b[k]:.2f}" if a.get(k) and b.get(k) else "-"
        lines.append(f"| {sname} | {ratio(r, per.get('nginx', {}), 'rps')} | {ratio(r, per.get('nginx_crs', {}), 'rps')} | "
                     f"{ratio(r, per.get('direct', {}), 'rps')} | {ratio(r, per.get('nginx', {}), 'cpu_s_per_10k')} | "
                     f"{ratio(r, per.get('nginx_crs', {}), 'cpu_s_per_10k')} | "
                     f"{ratio(per.get('rpaas_crs', {}), per.get('nginx_crs', {}), 'cpu_s_per_10k')} | "
                     f"{ratio(per.get('bare_pingora', {}), per.get('nginx', {}), 'cpu_s_per_10k')} |")
    if paced and paced.get("median"):
        d = paced["median"].get("direct", {})
        lines += ["", f"Latency at half of nginx's peak get_1k rate ({paced['target_rps']} req/s aimed at: "
                      f"{paced['conns']} connections, {PACE_MS} ms between a response and the next request):", "",
                  "| contender | req/s | p50 ms | p99 ms | p99 added over direct, ms |", "|---|---|---|---|---|"]
        for c, m in paced["median"].items():
            added = (f"{m['p99_ms'] - d['p99_ms']:.3f}" if m.get("p99_ms") is not None and d.get("p99_ms") is not None
                     else "-")
            lines.append(f"| {c} | {m['rps']:.0f} | {m['p50_ms']} | {m['p99_ms']} | {added} |")
    lines += ["", "HTTP/2 (h2load -c16 -m10):", "", "| contender | req/s | 2xx of requests |", "|---|---|---|"]
    for c, v in h2.items():
        lines.append(f"| {c} | {v['rps']:.0f} | {v.get('status_2xx', 0)} / {v['requests']} |")
    lines += ["", f"Idle TLS keep-alive connections ({IDLE_N} requested):", "",
              "| contender | opened | still open when measured (never used / after a request) | KiB per connection, never used | KiB per connection, after one request |",
              "|---|---|---|---|---|"]
    for c, v in idle.items():
        after = v.get("after_request", {})
        def kib(x):
            return "- (some closed)" if x.get("kib_per_conn") is None else x["kib_per_conn"]
        lines.append(f"| {c} | {v['opened']} | {v.get('still_open', '-')} / {after.get('still_open', '-')} | "
                     f"{kib(v)} | {kib(after) if after else '-'} |")
    md = "\n".join(lines) + "\n"
    out = os.path.join(ROOT, "bench", "results")
    os.makedirs(out, exist_ok=True)
    json.dump({"stamp": stamp, "quick": QUICK, "results": results, "summary": summary, "h2": h2, "idle": idle,
               "paced": paced},
              open(os.path.join(out, f"{stamp}.json"), "w"), indent=1)
    open(os.path.join(out, f"{stamp}.md"), "w").write(md)
    # A smoke run does not replace the last full run's table.
    open(os.path.join(out, "latest-quick.md" if QUICK else "latest.md"), "w").write(md)
    print(md)


if __name__ == "__main__":
    main()
