#!/usr/bin/env python3
"""rpaas robustness suite. Starts a node in front of the stand-in origin (and a faulty one),
then: testssl.sh on each TLS profile; request smuggling probes checked on the origin side;
slowloris and slow-body attacks while normal clients keep being served; upstream faults;
100 reloads under load with open WebSocket connections. Prints PASS/FAIL per check and exits
non-zero if any failed. Loopback only; every phase is bounded in time.
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = "--quick" in sys.argv
HOST = "robust-a.example.net"
FAULT_HOST = "robust-f.example.net"
RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append((name, bool(ok), detail))
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def tls_ctx(alpn=("http/1.1",)):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    c.set_alpn_protocols(list(alpn))
    return c


def connect(port, host=HOST, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return tls_ctx().wrap_socket(s, server_hostname=host)


def read_response(s, timeout=5):
    """Reads one HTTP/1.x response: (status, headers, body) or (None, ...) if closed."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                return None, {}, data
            data += chunk
    except (socket.timeout, OSError, ssl.SSLError):
        return None, {}, data
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except Exception:
        return None, {}, data
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0") or 0)
    try:
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    except (socket.timeout, OSError, ssl.SSLError):
        pass
    return status, headers, rest[:n]


def get(port, path, host=HOST, timeout=10):
    try:
        s = connect(port, host, timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        st, h, b = read_response(s, timeout)
        s.close()
        return st, h, b
    except Exception as e:
        return None, {}, str(e).encode()


class Origin:
    """The stand-in Automate origin (rpaas-standin)."""

    def __init__(self):
        self.port = free_port()
        self.p = subprocess.Popen([os.path.join(ROOT, "target/release/rpaas-standin"), f"127.0.0.1:{self.port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def _http(self, path):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
        s.close()
        return data.partition(b"\r\n\r\n")[2]

    def seen(self):
        return [tuple(x) for x in json.loads(self._http("/__seen"))]

    def reset(self):
        self._http("/__reset")

    def stop(self):
        self.p.kill()
        self.p.wait()


class FaultOrigin(threading.Thread):
    """An origin that misbehaves on purpose: /reset resets mid-response, /slow never answers."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.sock = None
        self.stopped = False

    def start(self):
        # Bound only now: until then the port is closed ("upstream down").
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(128)
        super().start()

    def run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            if b" /reset" in data:
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
                return
            if b" /slow" in data:
                time.sleep(8)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def stop(self):
        self.stopped = True
        if self.sock:
            self.sock.close()


def start_node(tmp, origin_port, fault_port):
    ports = {"intermediate": free_port(), "legacy": free_port(), "admin": free_port()}
    subprocess.run(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN={HOST} "
                   f"-addext subjectAltName=DNS:{HOST},DNS:{FAULT_HOST} -keyout {tmp}/key.pem -out {tmp}/cert.pem",
                   shell=True, check=True, capture_output=True)
    cfg = f"""
[node]
admin = "127.0.0.1:{ports['admin']}"
log = "{tmp}/rpaas.log"
header_timeout = "5s"
[node.limits]
ban_after = 0

[[listener]]
address = "127.0.0.1:{ports['intermediate']}"
tls = "intermediate"
default_host = "{HOST}"

[[listener]]
address = "127.0.0.1:{ports['legacy']}"
tls = "legacy"
default_host = "{HOST}"

[[instance]]
id = "a"
hostnames = ["{HOST}"]
cert = "{tmp}/cert.pem"
key = "{tmp}/key.pem"
upstream = "http://127.0.0.1:{origin_port}"

[[instance]]
id = "faulty"
hostnames = ["{FAULT_HOST}"]
cert = "{tmp}/cert.pem"
key = "{tmp}/key.pem"
upstream = "http://127.0.0.1:{fault_port}"
connect_timeout = "2s"
read_timeout = "2s"
"""
    path = f"{tmp}/rpaas.toml"
    open(path, "w").write(cfg)
    p = subprocess.Popen([os.path.join(ROOT, "target/release/rpaas"), "serve", "--config", path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for port in ports.values():
        wait_port(port)
    return p, ports, path


def healthz(ports):
    try:
        s = socket.create_connection(("127.0.0.1", ports["admin"]), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        data = s.recv(65536)
        s.close()
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def testssl(tmp, ports):
    if QUICK:
        print("SKIP testssl.sh (--quick)")
        return
    for profile in ["intermediate", "legacy"]:
        out = f"{tmp}/testssl-{profile}.json"
        subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "batch", "--ip", "127.0.0.1",
                        "-p", "-s", "-U", "--jsonfile", out, f"{HOST}:{ports[profile]}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        try:
            findings = json.load(open(out))
        except Exception as e:
            check(f"testssl {profile}: report", False, str(e))
            continue
        by_id = {f["id"]: f for f in findings}
        offered = lambda i: "not offered" not in by_id.get(i, {}).get("finding", "not offered")
        bad = [f for f in findings if f.get("severity") in ("HIGH", "CRITICAL")]
        if profile == "intermediate":
            check("testssl intermediate: no SSLv2/SSLv3/TLS 1.0/1.1", not any(offered(i) for i in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]),
                  str({i: by_id.get(i, {}).get("finding") for i in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"]}))
            check("testssl intermediate: TLS 1.2 and 1.3 offered", offered("TLS1_2") and offered("TLS1_3"))
            check("testssl intermediate: nothing HIGH/CRITICAL", not bad, "; ".join(f"{f['id']}: {f['finding']}" for f in bad))
        else:
            check("testssl legacy: TLS 1.0 and 1.1 offered", offered("TLS1") and offered("TLS1_1"))
            check("testssl legacy: no SSLv2/SSLv3", not offered("SSLv2") and not offered("SSLv3"))
            protocol_ids = {"TLS1", "TLS1_1", "BEAST", "BEAST_CBC_TLS1", "LUCKY13", "SWEET32", "cipherlist_OBSOLETED",
                            "cipherlist_AVERAGE", "FS_TLS12_sig_algs"}
            other = [f for f in bad if f["id"] not in protocol_ids]
            check("testssl legacy: nothing HIGH/CRITICAL but protocol warnings", not other,
                  "; ".join(f"{f['id']}: {f['finding']}" for f in other))


SMUGGLING = [
    ("CL.TE", b"POST /probe-clte HTTP/1.1\r\nHost: H\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled-clte HTTP/1.1\r\nX: x"),
    ("TE.CL", b"POST /probe-tecl HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2e\r\nGET /smuggled-tecl HTTP/1.1\r\nHost: H\r\nX: x\r\n\r\n0\r\n\r\n"),
    ("TE xchunked", b"POST /probe-x HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n1\r\nZ\r\n0\r\n\r\nGET /smuggled-x HTTP/1.1\r\nHost: H\r\n\r\n"),
    ("TE leading space", b"POST /probe-sp HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding:  chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n"),
    ("TE chunked, identity", b"POST /probe-ci HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding: chunked, identity\r\n\r\n1\r\nZ\r\n0\r\n\r\n"),
    ("TE twice", b"POST /probe-te2 HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n1\r\nZ\r\n0\r\n\r\n"),
    ("TE with tab", b"POST /probe-tab HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding:\tchunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n"),
    ("duplicate CL equal", b"POST /probe-cl2 HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"),
    ("conflicting CL", b"POST /probe-clx HTTP/1.1\r\nHost: H\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /smuggled-clx HTTP/1.1\r\nHost: H\r\n\r\n"),
    ("obs-fold", b"GET /probe-fold HTTP/1.1\r\nHost: H\r\nX-Folded: a\r\n b\r\n\r\n"),
    ("obs-fold TE", b"POST /probe-foldte HTTP/1.1\r\nHost: H\r\nContent-Length: 4\r\nTransfer-Encoding:\r\n chunked\r\n\r\n1\r\nZ\r\n0\r\n\r\n"),
    ("bare LF", b"GET /probe-lf HTTP/1.1\nHost: H\nX: y\n\n"),
    ("NUL in header", b"GET /probe-nul HTTP/1.1\r\nHost: H\r\nX-Nul: a\x00b\r\n\r\n"),
    ("control byte in header", b"GET /probe-ctl HTTP/1.1\r\nHost: H\r\nX-Ctl: a\x01b\r\n\r\n"),
    ("HTTP/1.0 body keep-alive", b"POST /probe-10 HTTP/1.0\r\nHost: H\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello"),
    ("bytes after Upgrade", b"GET /ws HTTP/1.1\r\nHost: H\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nGET /smuggled-up HTTP/1.1\r\nHost: H\r\n\r\n"),
]


def smuggling(port, origin):
    for name, raw in SMUGGLING:
        origin.reset()
        raw = raw.replace(b"Host: H", f"Host: {HOST}".encode())
        probe_path = raw.split(b" ")[1].decode()
        statuses = []
        try:
            s = connect(port)
            s.sendall(raw)
            st, _, _ = read_response(s, 3)
            statuses.append(st)
            if st is not None and st != 101:
                # Whatever the proxy did, the next request on this connection must be a clean one.
                try:
                    s.sendall(f"GET /probe-after HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                    st2, _, _ = read_response(s, 3)
                    statuses.append(st2)
                except OSError:
                    statuses.append(None)
            s.close()
        except OSError:
            statuses.append(None)
        time.sleep(0.3)
        seen = origin.seen()
        smuggled = [x for x in seen if "smuggled" in x[1] or x[0] not in ("GET", "POST")]
        probes = [x for x in seen if x[1].startswith(probe_path)]
        ok = not smuggled and len(probes) <= 1 and statuses[0] in (None, 101, 200, 400, 404, 405, 501)
        check(f"smuggling {name}: origin saw at most one request", ok,
              f"statuses {statuses}, origin saw {seen}")


def slow_clients(port):
    dur = 10 if QUICK else 20
    for mode, flag in [("slowloris", "-H"), ("slow body", "-B")]:
        atk = subprocess.Popen(["slowhttptest", flag, "-c", "400", "-i", "3", "-r", "100", "-l", str(dur), "-s", "8192",
                                "-u", f"https://127.0.0.1:{port}/automate/", "-t", "POST" if flag == "-B" else "GET",
                                "-x", "10", "-p", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3)
        good, slow, total = 0, 0, 0
        end = time.time() + dur - 4
        while time.time() < end:
            t = time.time()
            st, _, _ = get(port, "/automate/")
            total += 1
            if st == 200:
                good += 1
            if time.time() - t > 2:
                slow += 1
            time.sleep(0.3)
        atk.wait(timeout=dur + 30)
        check(f"{mode}: normal clients served during the attack", total > 0 and good == total and slow == 0,
              f"{good}/{total} ok, {slow} slower than 2 s")


def faults(ports, fault):
    port = ports["intermediate"]
    t = time.time()
    st, _, _ = get(port, "/x", FAULT_HOST)
    check("upstream down: 502 quickly", st == 502 and time.time() - t < 3, f"status {st} after {time.time() - t:.1f}s")
    fault.start()
    time.sleep(0.2)
    st, _, _ = get(port, "/ok", FAULT_HOST)
    check("upstream back: recovered", st == 200, f"status {st}")
    st, h, body = get(port, "/reset", FAULT_HOST)
    check("upstream resets mid-response: client sees a truncated answer, not a hang", st in (None, 200, 502), f"status {st}")
    t = time.time()
    st, _, _ = get(port, "/slow", FAULT_HOST, timeout=15)
    el = time.time() - t
    check("upstream slower than read_timeout (2 s): 504 within the timeout", st == 504 and el < 4, f"status {st} after {el:.1f}s")
    st, _, _ = get(port, "/ok", FAULT_HOST)
    check("after the faults: still serving", st == 200, f"status {st}")
    check("after the faults: /healthz ok", healthz(ports))


def ws_open(port):
    s = connect(port)
    s.sendall(f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    st, _, _ = read_response(s, 5)
    return s if st == 101 else None


def ws_echo(s, msg):
    payload = msg.encode()
    mask = b"\x01\x02\x03\x04"
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(frame)
    s.settimeout(5)
    head = s.recv(2)
    n = head[1] & 0x7F
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return data.decode()


def reload_under_load(p, ports, path):
    port = ports["intermediate"]
    sockets = [ws_open(port) for _ in range(5)]
    check("websockets opened", all(sockets))
    dur = 8 if QUICK else 15
    wrk = subprocess.Popen(["wrk", "-t1", "-c8", f"-d{dur}s", "-H", f"Host: {HOST}", f"https://127.0.0.1:{port}/automate/"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.5)
    reloads = 100
    for _ in range(reloads):
        os.kill(p.pid, signal.SIGHUP)
        time.sleep((dur - 2) / reloads)
    out, _ = wrk.communicate(timeout=dur + 30)
    import re
    req = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n_err = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in errs.groups()) if errs else 0)
    check(f"{reloads} reloads under load: 0 failed requests", req and int(req.group(1)) > 0 and n_err == 0,
          f"{req.group(1) if req else 0} requests, {n_err} failed")
    lines = open(os.path.join(os.path.dirname(path), "rpaas.log")).read().count('"event":"reloaded"')
    check(f"{reloads} reloads applied", lines >= reloads, f"{lines} reloaded events")
    ok = all(s and ws_echo(s, f"after reloads {i}") == f"after reloads {i}" for i, s in enumerate(sockets))
    check("websockets survive the reloads", ok)


def main():
    tmp = tempfile.mkdtemp(prefix="rpaas-robust-")
    origin = Origin()
    fault_port = free_port()
    fault = FaultOrigin(fault_port)
    p, ports, path = start_node(tmp, origin.port, fault_port)
    try:
        testssl(tmp, ports)
        smuggling(ports["intermediate"], origin)
        faults(ports, fault)
        slow_clients(ports["intermediate"])
        reload_under_load(p, ports, path)
        check("node still healthy at the end", healthz(ports) and p.poll() is None)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
        origin.stop()
        fault.stop()
    failed = [r for r in RESULTS if not r[1]]
    print(f"\nrobustness: {len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
