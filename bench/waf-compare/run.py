#!/usr/bin/env python3
"""rampart's WAF against ModSecurity 2 (Apache's mod_security2), both running
Debian's OWASP Core Rule Set with the same settings, on the same corpus.

    bench/waf-compare/run.py --rampart target/release/rampart --paranoia 1 2

The corpus is built at run time from installed packages (wfuzz's and
sqlmap's word lists and payload files, Debian packages `wfuzz` and
`sqlmap`): attack strings placed in query strings, form bodies, JSON
bodies, cookies and headers, and benign traffic (forms, JSON APIs, file
uploads, browsers' headers). Each request goes to Apache and to rampart,
one after the other; a request is "blocked" when the answer is 403. The
matched detection rules (ids 911000-944999) are read from Apache's error
log and rampart's log. The report (Markdown) lists agreement, detection
and false positives per paranoia level, and every disagreement.

Needs: apache2, libapache2-mod-security2, modsecurity-crs, wfuzz, sqlmap
(scripts/test installs them). Run as root or as a user who may run
apache2 on a high port.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WFUZZ = "/usr/share/wfuzz/wordlist"
SQLMAP = "/usr/share/sqlmap/data"
CRS_SETUP = "/etc/modsecurity/crs/crs-setup.conf"
CRS_RULES = "/usr/share/modsecurity-crs/rules"
MODULES = "/usr/lib/apache2/modules"

# Rules both engines load before the Core Rule Set: the body processors
# ModSecurity's recommended configuration turns on (rampart picks the same
# ones by content type), and a refusal of bodies that do not parse.
BASE_RULES = r"""
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"
"""

# Detection rules: 911000-944999 (not the blocking evaluation, 949xxx).
DETECTION = re.compile(r"^9(1[1-9]|[23]\d|4[0-4])\d{3}$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Backend(BaseHTTPRequestHandler):
    """Answers 200 to anything, after reading the body, in one write on a
    socket without Nagle's delay (a head and body written apart would wait
    for the proxy's delayed ACK: 40 ms a request)."""

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def answer(self):
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = answer

    def log_message(self, *args):
        pass


def lines(path):
    try:
        with open(path, encoding="latin-1") as f:
            return [l.rstrip("\r\n") for l in f if l.strip() and not l.startswith("#")]
    except FileNotFoundError:
        sys.exit(f"{path} is missing: install Debian's wfuzz and sqlmap (scripts/test does)")


def sqlmap_payloads(rng):
    """sqlmap's injection templates with their placeholders filled in."""
    out = []
    d = os.path.join(SQLMAP, "xml", "payloads")
    for name in sorted(os.listdir(d)):
        text = open(os.path.join(d, name), encoding="utf-8").read()
        for m in re.finditer(r"<payload>(.*?)</payload>", text, re.S):
            p = m.group(1).strip()
            p = re.sub(r"\[RANDNUM\d?\]", lambda _: str(rng.randint(1000, 9999)), p)
            p = re.sub(r"\[RANDSTR\d?\]", lambda _: "".join(rng.choice("abcdefghij") for _ in range(4)), p)
            p = p.replace("[DELIMITER_START]", "qvkpq").replace("[DELIMITER_STOP]", "qzxjq")
            p = p.replace("[SLEEPTIME]", "5").replace("[INFERENCE]", "1=1").replace("[GENERIC_SQL_COMMENT]", "-- -")
            p = re.sub(r"\[[A-Z_]+\]", "1", p)
            p = p.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            out.append("1' " + p + " -- -")
    return out


def attacks(rng):
    """(family, payload) pairs from the installed word lists."""
    inj = os.path.join(WFUZZ, "Injections")
    fam = []
    for f, name in [("SQL.txt", "sqli"), ("XSS.txt", "xss"), ("Traversal.txt", "traversal"),
                    ("XML.txt", "xml"), ("All_attack.txt", "mixed")]:
        fam += [(name, p) for p in lines(os.path.join(inj, f))]
    trav = lines(os.path.join(WFUZZ, "vulns", "dirTraversal-nix.txt"))
    fam += [("traversal", p) for p in rng.sample(trav, min(300, len(trav)))]
    fam += [("sqli", p) for p in sqlmap_payloads(rng)]
    seen, out = set(), []
    for f, p in fam:
        if p not in seen and len(p) < 2000:
            seen.add(p)
            out.append((f, p))
    return out


def header_safe(v):
    """A header value as a client could send it: printable ASCII."""
    if all(32 <= ord(c) < 127 for c in v):
        return v
    return urllib.parse.quote(v, safe="/:;=,.'\"()<>[]{} ")


class Req:
    def __init__(self, kind, family, placement, method, path, headers, body=b""):
        self.kind, self.family, self.placement = kind, family, placement
        self.method, self.path, self.headers, self.body = method, path, headers, body


def browser_headers(rng, agents):
    return [
        ("User-Agent", rng.choice(agents)),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Accept-Language", rng.choice(["en-US,en;q=0.5", "de-DE,de;q=0.9,en;q=0.4", "fr-FR,fr;q=0.8"])),
        ("Accept-Encoding", "gzip, deflate, br"),
    ]


def corpus(rng, size):
    agents = [a for a in lines(os.path.join(SQLMAP, "txt", "user-agents.txt")) if a.isascii()]
    words = [w for w in lines(os.path.join(WFUZZ, "general", "common.txt")) if w.isalnum()]
    names = [n for n in lines(os.path.join(WFUZZ, "others", "names.txt")) if n.isalpha()]
    out = []
    q = urllib.parse.quote_plus
    atk = attacks(rng)
    placements = ["query", "form", "json", "cookie", "header"]
    n_attack = int(size * 0.7)
    for i in range(n_attack):
        family, p = atk[i % len(atk)]
        place = placements[(i // len(atk) + i) % len(placements)]
        h = browser_headers(rng, agents)
        h.append(("Host", "shop.example"))
        if place == "query":
            out.append(Req("attack", family, place, "GET", f"/search?q={q(p)}&page=1", h))
        elif place == "form":
            h.append(("Content-Type", "application/x-www-form-urlencoded"))
            out.append(Req("attack", family, place, "POST", "/comment",
                           h, f"name=ann&comment={q(p)}".encode()))
        elif place == "json":
            h.append(("Content-Type", "application/json"))
            out.append(Req("attack", family, place, "POST", "/api/comments",
                           h, json.dumps({"post": 12, "comment": {"text": p}}).encode()))
        elif place == "cookie":
            h.append(("Cookie", f"lang=en; prefs={urllib.parse.quote(p, safe='')}"))
            out.append(Req("attack", family, place, "GET", "/account", h))
        else:
            h.append(("Referer", header_safe(p)))
            out.append(Req("attack", family, place, "GET", "/", h))
    while len(out) < size:
        h = browser_headers(rng, agents)
        h.append(("Host", "shop.example"))
        shape = rng.choice(["page", "search", "form", "json", "upload", "cookie"])
        word, name = rng.choice(words), rng.choice(names)
        if shape == "page":
            out.append(Req("benign", "-", shape, "GET", f"/{word}/{rng.choice(words)}.html", h))
        elif shape == "search":
            out.append(Req("benign", "-", shape, "GET",
                           f"/search?q={q(word + ' ' + rng.choice(words))}&sort=price&page={rng.randint(1, 40)}", h))
        elif shape == "form":
            h.append(("Content-Type", "application/x-www-form-urlencoded"))
            body = urllib.parse.urlencode({
                "name": name, "email": f"{name.lower()}@example.com",
                "subject": f"Question about {word}",
                "message": f"Hello, I ordered the {word} on Monday and would like to know when it ships. Thanks, {name}",
            }).encode()
            out.append(Req("benign", "-", shape, "POST", "/contact", h, body))
        elif shape == "json":
            h.append(("Content-Type", "application/json"))
            body = json.dumps({"user": {"name": name, "age": rng.randint(18, 90)},
                               "items": [{"sku": f"{word}-{rng.randint(1, 999)}", "qty": rng.randint(1, 5)}],
                               "note": f"Please deliver to {name} after 5 pm"}).encode()
            out.append(Req("benign", "-", shape, "POST", "/api/orders", h, body))
        elif shape == "upload":
            b = "----rampart" + hashlib.sha1(str(len(out)).encode()).hexdigest()[:16]
            h.append(("Content-Type", f"multipart/form-data; boundary={b}"))
            content = (f"Report for {name}\n" + f"{word} " * rng.randint(5, 200)).encode()
            body = (f"--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMy {word}\r\n"
                    f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{word}.txt\"\r\n"
                    f"Content-Type: text/plain\r\n\r\n").encode() + content + f"\r\n--{b}--\r\n".encode()
            out.append(Req("benign", "-", shape, "POST", "/upload", h, body))
        else:
            h.append(("Cookie", f"session={hashlib.sha1(name.encode()).hexdigest()}; theme=dark; cart={rng.randint(1, 9)}"))
            out.append(Req("benign", "-", shape, "GET", f"/cart?item={q(word)}", h))
    rng.shuffle(out)
    return out


def send(port, r):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest(r.method, r.path, skip_host=True, skip_accept_encoding=True)
    for n, v in r.headers:
        c.putheader(n, v)
    if r.body or r.method == "POST":
        c.putheader("Content-Length", str(len(r.body)))
    c.putheader("Connection", "close")
    c.endheaders(r.body or None)
    resp = c.getresponse()
    resp.read()
    c.close()
    return resp.status


class Tail:
    def __init__(self, path):
        self.path, self.pos = path, 0

    def new(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
                self.pos += len(data)
                return data.decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def apache_ids(text):
    return {i for i in re.findall(r'\[id "(\d+)"\]', text) if DETECTION.match(i)}


def rampart_ids(text):
    ids = set()
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        f = rec.get("fields", rec)
        m = str(f.get("matched", ""))
        ids |= {i for i in m.split(",") if DETECTION.match(i)}
    return ids


def start_apache(work, port, backend, paranoia):
    conf = os.path.join(work, "apache.conf")
    os.makedirs(os.path.join(work, "modsec-tmp"), exist_ok=True)
    with open(os.path.join(work, "base.conf"), "w") as f:
        f.write(BASE_RULES)
    with open(conf, "w") as f:
        f.write(f"""ServerRoot {work}
ServerName localhost
PidFile {work}/apache.pid
Listen 127.0.0.1:{port}
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule unique_id_module {MODULES}/mod_unique_id.so
LoadModule proxy_module {MODULES}/mod_proxy.so
LoadModule proxy_http_module {MODULES}/mod_proxy_http.so
LoadModule security2_module {MODULES}/mod_security2.so
ErrorLog {work}/error.log
LogLevel warn
MaxRequestWorkers 4
ThreadsPerChild 4
SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 1048576
SecRequestBodyNoFilesLimit 1048576
SecRequestBodyLimitAction Reject
SecPcreMatchLimit 500000
SecPcreMatchLimitRecursion 500000
SecTmpDir {work}/modsec-tmp
SecDataDir {work}/modsec-tmp
SecAuditEngine Off
Include {work}/base.conf
Include {CRS_SETUP}
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={paranoia}"
Include {CRS_RULES}/*.conf
ProxyPass / http://127.0.0.1:{backend}/
""")
    if os.geteuid() == 0:
        # Apache gives up root for www-data: its files must be writable.
        os.chmod(work, 0o777)
        os.chmod(os.path.join(work, "modsec-tmp"), 0o777)
    p = subprocess.Popen(["/usr/sbin/apache2", "-f", conf, "-DFOREGROUND"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "apache.stderr"), "w"))
    wait_port(port, p, os.path.join(work, "apache.stderr"))
    return p


def start_rampart(binary, work, backend, paranoia):
    with open(os.path.join(work, "base.conf"), "w") as f:
        f.write(BASE_RULES)
    cfg = os.path.join(work, "rampart.toml")
    with open(cfg, "w") as f:
        f.write(f"""[runtime]
workers = 1
state_dir = "{work}/state"
[admin]
enabled = false
[log]
format = "json"
[waf]
rules = ["{work}/base.conf", "{CRS_SETUP}", "{CRS_RULES}/*.conf"]
paranoia = {paranoia}
body_limit = "1MiB"
[[listener]]
name = "web"
address = "127.0.0.1:0"
[[pool]]
name = "app"
[[pool.server]]
address = "127.0.0.1:{backend}"
[[route]]
pool = "app"
""")
    return launch(binary, cfg, work)


def launch(binary, cfg, work):
    """Runs rampart with `cfg` (its log in WORK/rampart.log): the process,
    the port its `web` listener took, the log's path."""
    err = os.path.join(work, "rampart.log")
    p = subprocess.Popen([binary, "run", "-c", cfg], stdout=subprocess.PIPE, stderr=open(err, "w"), text=True)
    port = None
    for line in p.stdout:
        line = line.strip()
        if line.startswith("listening web "):
            port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
        if line == "ready":
            break
    if port is None:
        sys.exit("rampart did not start: " + open(err).read()[-2000:])
    threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
    return p, port, err


def wait_port(port, proc, log):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit("apache2 ended: " + open(log).read()[-3000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def stop(p):
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()


def run_level(args, reqs, backend_port, paranoia):
    work = tempfile.mkdtemp(prefix=f"waf-compare-pl{paranoia}-")
    os.chmod(work, 0o755)
    ap_port = free_port()
    apache_dir = os.path.join(work, "apache")
    os.makedirs(apache_dir)
    apache = start_apache(apache_dir, ap_port, backend_port, paranoia)
    try:
        ram, ram_port, ram_log = start_rampart(args.rampart, work, backend_port, paranoia)
    except SystemExit:
        stop(apache)
        raise
    ap_tail, ram_tail = Tail(os.path.join(work, "apache", "error.log")), Tail(ram_log)
    ap_tail.new(), ram_tail.new()
    rows = []
    try:
        for i, r in enumerate(reqs):
            a = send(ap_port, r)
            a_ids = apache_ids(ap_tail.new())
            b = send(ram_port, r)
            b_ids = rampart_ids(ram_tail.new())
            rows.append((r, a, b, a_ids, b_ids))
    finally:
        stop(ram)
        stop(apache)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def pct(n, d):
    return f"{100.0 * n / d:.2f} %" if d else "-"


def report(levels, out):
    lines_ = []
    summary = []
    for pl, rows in levels:
        n = len(rows)
        agree = sum(1 for r, a, b, _, _ in rows if (a == 403) == (b == 403))
        blocked_both = [(r, a, b, x, y) for r, a, b, x, y in rows if a == 403 and b == 403]
        same_ids = sum(1 for _, _, _, x, y in rows if x == y)
        atk = [row for row in rows if row[0].kind == "attack"]
        ben = [row for row in rows if row[0].kind == "benign"]
        summary.append({"paranoia": pl, "requests": n, "agree": agree,
                        "modsec_detect": sum(1 for r in atk if r[1] == 403),
                        "rampart_detect": sum(1 for r in atk if r[2] == 403),
                        "attacks": len(atk), "benign": len(ben),
                        "modsec_fp": sum(1 for r in ben if r[1] == 403),
                        "rampart_fp": sum(1 for r in ben if r[2] == 403),
                        "blocked_both": len(blocked_both), "same_ids": same_ids})
        matched_any = sum(1 for _, _, _, x, y in rows if x or y)
        lines_.append(f"## Paranoia level {pl}\n")
        lines_.append(f"- requests: {n} ({len(atk)} attacks, {len(ben)} benign)")
        lines_.append(f"- verdicts agree: {agree} ({pct(agree, n)})")
        lines_.append(f"- the same detection rules matched (911000-944999): {same_ids} of {n} requests "
                      f"({pct(same_ids, n)}; {matched_any} requests matched at least one in either engine)")
        lines_.append("")
        lines_.append("| placement | family | attacks | ModSecurity blocks | rampart blocks |")
        lines_.append("|---|---|---|---|---|")
        groups = {}
        for r, a, b, _, _ in atk:
            g = groups.setdefault((r.placement, r.family), [0, 0, 0])
            g[0] += 1
            g[1] += a == 403
            g[2] += b == 403
        for (p, f), (t, a, b) in sorted(groups.items()):
            lines_.append(f"| {p} | {f} | {t} | {a} ({pct(a, t)}) | {b} ({pct(b, t)}) |")
        lines_.append("")
        lines_.append("| benign shape | requests | ModSecurity blocks | rampart blocks |")
        lines_.append("|---|---|---|---|")
        bg = {}
        for r, a, b, _, _ in ben:
            g = bg.setdefault(r.placement, [0, 0, 0])
            g[0] += 1
            g[1] += a == 403
            g[2] += b == 403
        for p, (t, a, b) in sorted(bg.items()):
            lines_.append(f"| {p} | {t} | {a} | {b} |")
        lines_.append("")
        dis = [row for row in rows if (row[1] == 403) != (row[2] == 403)]
        lines_.append(f"### Disagreements ({len(dis)})\n")
        for r, a, b, x, y in dis:
            body = r.body[:160].decode("latin-1") if r.body else ""
            lines_.append(f"- `{r.method} {r.path[:160]}` {r.placement}/{r.family}: ModSecurity {a} "
                          f"{sorted(x)}, rampart {b} {sorted(y)}" + (f"; body `{body}`" if body else ""))
        lines_.append("")
        fp = [row for row in ben if row[1] == 403 or row[2] == 403]
        lines_.append(f"### Benign requests blocked ({len(fp)})\n")
        for r, a, b, x, y in fp:
            lines_.append(f"- `{r.method} {r.path[:160]}` {r.placement}: ModSecurity {a} {sorted(x)}, rampart {b} {sorted(y)}")
        lines_.append("")
        idd = [row for row in rows if row[3] != row[4]]
        lines_.append(f"### Different detection rules matched ({len(idd)}; the first 200)\n")
        for r, a, b, x, y in idd[:200]:
            body = r.body[:160].decode("latin-1") if r.body else ""
            lines_.append(f"- `{r.method} {r.path[:120]}` {r.placement}/{r.family} (ModSecurity {a}, rampart {b}): "
                          f"only ModSecurity {sorted(x - y)}, only rampart {sorted(y - x)}"
                          + (f"; body `{body}`" if body else ""))
        lines_.append("")
    with open(out, "w") as f:
        f.write("# rampart's WAF against ModSecurity 2, Core Rule Set 3.3\n\n")
        f.write("Made by `bench/waf-compare/run.py`.\n\n")
        f.write("\n".join(lines_))
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rampart", required=True, help="the rampart binary")
    ap.add_argument("--paranoia", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--requests", type=int, default=5200)
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--report", default="target/waf-compare.md")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--keep", action="store_true", help="keep the work directories")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    reqs = corpus(rng, args.requests)
    backend = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    levels = []
    for pl in args.paranoia:
        t = time.time()
        rows = run_level(args, reqs, backend.server_address[1], pl)
        levels.append((pl, rows))
        agree = sum(1 for _, a, b, _, _ in rows if (a == 403) == (b == 403))
        print(f"paranoia {pl}: {len(rows)} requests, verdicts agree on {agree} ({pct(agree, len(rows))}), "
              f"{time.time() - t:.0f} s", flush=True)
    summary = report(levels, args.report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    backend.shutdown()
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
