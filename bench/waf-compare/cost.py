#!/usr/bin/env python3
"""CPU time the Core Rule Set adds per request, in rampart and in Apache with
ModSecurity 2, on three request shapes:

    bench/waf-compare/cost.py --rampart target/release/rampart

Each server runs twice, with its WAF on (CRS, paranoia 1) and off (rampart
without `[waf]`; Apache with the module loaded and `SecRuleEngine Off`),
and answers the same requests, sent one after the other over one
keep-alive connection. The figure is the server's own CPU time (user +
system, every process and thread, from /proc) divided by the number of
requests; the added cost is on minus off. The client's time is not in it.
"""

import argparse
import http.client
import os
import shutil
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer

import run as harness

SHAPES = {
    "plain GET": ("GET", "/", [], b""),
    "GET, 10-parameter query, cookies": (
        "GET",
        "/products/list?" + "&".join(f"p{i}=value{i}" for i in range(10)),
        [("Cookie", "session=3f1c0a9b8e7d6c5b4a39281706f5e4d3; theme=dark; cart=3; lang=en-GB")],
        b"",
    ),
    "POST, 4 KiB form": (
        "POST",
        "/contact",
        [("Content-Type", "application/x-www-form-urlencoded")],
        None,  # built below: 4 KiB of ordinary form fields
    ),
}

BROWSER = [
    ("Host", "shop.example"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br"),
]


def form_4k():
    fields = []
    i = 0
    while len("&".join(fields)) < 4096:
        fields.append(f"field{i}=Some+ordinary+text+a+customer+would+type+number+{i}")
        i += 1
    return "&".join(fields)[:4096].encode()


def cpu_ticks(pid):
    """User + system ticks of `pid` and every process below it."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measure(port, pid, shape, n):
    method, path, extra, body = shape
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def one():
        c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in BROWSER + extra:
            c.putheader(k, v)
        if body:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body or None)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status}")

    for _ in range(200):
        one()
    before = cpu_ticks(pid)
    t = time.time()
    for _ in range(n):
        one()
    wall = time.time() - t
    ticks = cpu_ticks(pid) - before
    c.close()
    hz = os.sysconf("SC_CLK_TCK")
    return ticks / hz / n * 1e6, n / wall


def apache(work, port, backend, waf):
    d = os.path.join(work, f"apache-{waf}")
    os.makedirs(d)
    p = harness.start_apache(d, port, backend, 1)
    if not waf:
        p.terminate()
        p.wait()
        conf = os.path.join(d, "apache.conf")
        text = open(conf).read().replace("SecRuleEngine On", "SecRuleEngine Off")
        open(conf, "w").write(text)
        os.remove(os.path.join(d, "error.log"))
        p = harness.subprocess.Popen(["/usr/sbin/apache2", "-f", conf, "-DFOREGROUND"],
                                     stdout=harness.subprocess.DEVNULL,
                                     stderr=open(os.path.join(d, "apache.stderr"), "w"))
        harness.wait_port(port, p, os.path.join(d, "apache.stderr"))
    return p


def rampart(binary, work, backend, waf):
    d = os.path.join(work, f"rampart-{waf}")
    os.makedirs(d)
    p, port, _ = harness.start_rampart(binary, d, backend, 1)
    if not waf:
        harness.stop(p)
        cfg = os.path.join(d, "rampart.toml")
        text = open(cfg).read()
        start, end = text.index("[waf]"), text.index("[[listener]]")
        open(cfg, "w").write(text[:start] + text[end:])
        p, port, _ = harness.launch(binary, cfg, d)
    return p, port


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rampart", required=True)
    ap.add_argument("--requests", type=int, default=5000, help="per shape and server (rampart: 4x)")
    args = ap.parse_args()
    SHAPES["POST, 4 KiB form"] = SHAPES["POST, 4 KiB form"][:3] + (form_4k(),)
    backend = ThreadingHTTPServer(("127.0.0.1", 0), harness.Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    bport = backend.server_address[1]
    work = tempfile.mkdtemp(prefix="waf-cost-")
    os.chmod(work, 0o755)
    results = {}
    try:
        for waf in (False, True):
            p, port = rampart(args.rampart, work, bport, waf)
            for name, shape in SHAPES.items():
                results[("rampart", waf, name)] = measure(port, p.pid, shape, args.requests * 4)
            harness.stop(p)
            port = harness.free_port()
            p = apache(work, port, bport, waf)
            for name, shape in SHAPES.items():
                results[("apache", waf, name)] = measure(port, p.pid, shape, args.requests)
            harness.stop(p)
    finally:
        backend.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print("| request | rampart, no WAF | rampart + CRS | rampart adds | Apache, engine off | "
          "Apache + ModSecurity + CRS | ModSecurity adds | rampart / ModSecurity |")
    print("|---|---|---|---|---|---|---|---|")
    for name in SHAPES:
        r0, r1 = results[("rampart", False, name)][0], results[("rampart", True, name)][0]
        a0, a1 = results[("apache", False, name)][0], results[("apache", True, name)][0]
        ra, aa = r1 - r0, a1 - a0
        ratio = f"{ra / aa:.2f}" if aa > 0 else "-"
        print(f"| {name} | {r0:.1f} µs | {r1:.1f} µs | {ra:.1f} µs | {a0:.1f} µs | {a1:.1f} µs | "
              f"{aa:.1f} µs | {ratio} |")


if __name__ == "__main__":
    main()
