#!/usr/bin/env python3
"""Independent RFC 6811 check, sharing no code with routewitness.

Reads `bgpdump -m` lines on stdin and a rpki-client JSON VRP file (plain, .gz or .bz2),
prints per-state counts of the announcements as JSON:
{"valid": n, "invalid_wrong_origin": n, "invalid_too_long": n, "not_found": n}

A VRP counts when the route's event time is not past its `expires`.
Origin: last AS of a final AS_SEQUENCE; a final AS_SET ({...}) has none; an empty path or
a final confederation segment means the peer originated it.
"""
import bz2, gzip, ipaddress, json, sys
from collections import defaultdict

def load_vrps(path):
    opener = bz2.open if path.endswith(".bz2") else gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        doc = json.load(f)
    table = defaultdict(list)   # (version, network int, length) -> [(asn, maxlen, expires)]
    for r in doc["roas"]:
        asn = r["asn"]
        asn = int(asn[2:]) if isinstance(asn, str) and asn.upper().startswith("AS") else int(asn)
        net = ipaddress.ip_network(r["prefix"])
        table[(net.version, int(net.network_address), net.prefixlen)].append(
            (asn, int(r["maxLength"]), r.get("expires")))
    return table

def origin_of(path, peer_as):
    toks = path.split()
    if not toks:
        return peer_as
    last = toks[-1]
    if last.startswith("{") or last.endswith("}"):
        return None
    if last.startswith("(") or last.startswith("[") or last.endswith(")") or last.endswith("]"):
        return peer_as
    return int(last)

def main():
    table = load_vrps(sys.argv[1])
    counts = {"valid": 0, "invalid_wrong_origin": 0, "invalid_too_long": 0, "not_found": 0}
    for line in sys.stdin:
        f = line.rstrip("\n").split("|")
        if len(f) < 7 or f[2] not in ("A", "B"):
            continue
        when, peer_as, prefix, path = float(f[1]), int(f[4]), f[5], f[6]
        net = ipaddress.ip_network(prefix, strict=False)
        origin = origin_of(path, peer_as)
        bits = 32 if net.version == 4 else 128
        addr = int(net.network_address)
        covered = valid = listed = False
        for plen in range(0, net.prefixlen + 1):
            key = (net.version, (addr >> (bits - plen)) << (bits - plen) if plen else 0, plen)
            for asn, maxlen, expires in table.get(key, ()):
                if expires is not None and expires < when:
                    continue
                covered = True
                if origin is not None and asn != 0 and asn == origin:
                    if net.prefixlen <= maxlen:
                        valid = True
                    else:
                        listed = True
        if valid:
            counts["valid"] += 1
        elif not covered:
            counts["not_found"] += 1
        elif listed:
            counts["invalid_too_long"] += 1
        else:
            counts["invalid_wrong_origin"] += 1
    json.dump(counts, sys.stdout)
    print()

if __name__ == "__main__":
    main()
