#!/usr/bin/python3
"""IPv6 multicast sender, receiver and report for the lab (standard library only).

  mcast.py send [--marks FILE] IFNAME PPS SECONDS HOPLIMIT GROUP ...
      Sends one UDP datagram (port 5001) per group PPS times a second; each
      payload holds a 64-bit big-endian sequence number (0, 1, ...; the
      same for all groups of one tick), the send time and the interval
      between ticks (big-endian doubles, seconds). SECONDS 0 = until SIGTERM/SIGINT.
      SIGUSR1 appends "mark SEQ TIME GAP" to FILE (SEQ: the next sequence
      number, TIME: wall clock, GAP: the sender's own longest pause between
      two ticks since the previous mark, ms); stopping appends "end SEQ TIME
      GAP". Prints "sent N per group" at the end.

  mcast.py recv [--name NAME] [--phases FILE] IFNAME SECONDS GROUP[,SOURCE] ...
      Joins each group (any-source, or source-specific with ",SOURCE") on
      IFNAME and keeps the sockets open; prints "ready" once joined.
      SECONDS 0 = until SIGTERM/SIGINT. Arrivals are timed with kernel
      receive timestamps (SO_TIMESTAMPNS). At the end it prints, per group,
      one machine-readable line
        summary receiver=NAME group=G phase=all sent=S received=R lost=L
                duplicates=D max_gap_ms=X net_gap_ms=N max_gap_end=T
                first_seq=F last_seq=L
      and, when FILE holds phase boundaries (lines "NAME SEQ TIME [GAP]",
      the last one "end SEQ TIME [GAP]"), one such line per group and phase
      (with phase_start=TIME instead of first/last_seq), where phase
      NAME covers sequence numbers [SEQ, next SEQ). A phase's longest gap is
      the longest time between consecutive arrivals (in arrival order, over
      all phases) that ends with one of its packets, or between its last
      arrival and the time the next phase began. net_gap_ms is the same
      with the sender's own pauses taken out: for consecutive arrivals a, b
      it is (b - a) * interval + (delay of b - delay of a), the gap a
      sender keeping its pace would have seen (a stalled sender process is
      not an outage of the network under test).

  mcast.py report [--phases FILE] [--check PHASE,...] [--max-gap-ms MS] FILE ...
      Reads summary lines from the FILEs and prints a table (with the
      sender's own longest pause per phase from the phases FILE). With --check,
      exits 1 unless every group received something in each named phase
      and no net gap in those phases exceeds MS (a raw gap above MS that
      the sender's pauses explain is printed as a warning).
"""
import math
import os
import select
import signal
import socket
import struct
import sys
import time
from array import array

PORT = 5001
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # asm-generic/socket.h
MCAST_JOIN_SOURCE_GROUP = getattr(socket, "MCAST_JOIN_SOURCE_GROUP", 46)  # linux/in.h


class Stop(Exception):
    pass


def _stop(signum, frame):
    raise Stop()


def options(argv, names):
    """Splits leading --name VALUE options off argv."""
    opts = {}
    while argv and argv[0].startswith("--"):
        key = argv[0][2:]
        if key not in names or len(argv) < 2:
            sys.exit(__doc__)
        opts[key] = argv[1]
        argv = argv[2:]
    return opts, argv


def sockaddr_in6(addr):
    """A struct sockaddr_in6 padded to sizeof(struct sockaddr_storage)."""
    sa = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, addr), 0)
    return sa + b"\0" * (128 - len(sa))


def join(ifname, spec):
    idx = socket.if_nametoindex(ifname)
    group, _, source = spec.partition(",")
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((group, PORT, 0, idx))
    if source:
        # struct group_source_req: gsr_interface (4 bytes, padded to 8),
        # gsr_group and gsr_source (struct sockaddr_storage each).
        gsr = struct.pack("=I4x", idx) + sockaddr_in6(group) + sockaddr_in6(source)
        s.setsockopt(socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, gsr)
    else:
        mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("=I", idx)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    s.setblocking(False)
    return group, s


class Group:
    """Arrivals of one group, compact enough for a lab left up for hours."""

    def __init__(self):
        # First arrivals, in arrival order: receive time, sequence number,
        # send time (nan for a bare sequence number) and tick interval.
        self.t, self.seq, self.sent, self.interval = array("d"), array("q"), array("d"), array("d")
        self.count = bytearray()  # arrivals per sequence number (saturating)

    def add(self, t, seq, sent, interval):
        if seq < 0 or seq > 1 << 32:
            return
        if seq >= len(self.count):
            self.count.extend(bytes(max(seq + 1 - len(self.count), 4096)))
        if self.count[seq]:
            self.count[seq] = min(self.count[seq] + 1, 255)
            return
        self.count[seq] = 1
        self.t.append(t)
        self.seq.append(seq)
        self.sent.append(sent)
        self.interval.append(interval)


def read_phases(path):
    """[(name, seq, time)] from the marks file, or [] if there is none."""
    if not path or not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 3:
                out.append((p[0], int(p[1]), float(p[2])))
    return out


def phase_stats(g, lo, hi, t_end):
    """Stats of sequence numbers [lo, hi) of one group."""
    counts = g.count[lo:hi]
    received = sum(1 for c in counts if c)
    dups = sum(c - 1 for c in counts if c > 1)
    gap, gap_end, net = 0.0, None, 0.0
    last = None
    for k in range(len(g.seq)):
        t, seq = g.t[k], g.seq[k]
        if not lo <= seq < hi:
            continue
        if k > 0:
            pt, pseq = g.t[k - 1], g.seq[k - 1]
            if t - pt > gap:
                gap, gap_end = t - pt, t
            if g.sent[k] == g.sent[k] and g.sent[k - 1] == g.sent[k - 1]:  # not nan
                # The gap a sender keeping its pace would have caused: its
                # schedule plus the change in one-way delay.
                pnet = (seq - pseq) * g.interval[k] + (t - g.sent[k]) - (pt - g.sent[k - 1])
            else:
                pnet = t - pt
            net = max(net, pnet)
        last = t
    if last is not None and t_end is not None:
        if t_end - last > gap:
            gap, gap_end = t_end - last, t_end
        net = max(net, t_end - last)
    sent = max(hi - lo, 0)
    return dict(sent=sent, received=received, lost=sent - received, duplicates=dups,
                max_gap_ms="%.1f" % (gap * 1000), net_gap_ms="%.1f" % (net * 1000),
                max_gap_end="%.6f" % gap_end if gap_end is not None else "-")


def recv(argv):
    opts, argv = options(argv, {"name", "phases"})
    if len(argv) < 3:
        sys.exit(__doc__)
    ifname, seconds, specs = argv[0], float(argv[1]), argv[2:]
    name = opts.get("name", ifname)
    socks = [join(ifname, spec) for spec in specs]
    groups = {g: Group() for g, _ in socks}
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print("ready", flush=True)
    end = time.time() + seconds if seconds > 0 else None
    try:
        while True:
            left = None
            if end is not None:
                left = end - time.time()
                if left <= 0:
                    break
            r, _, _ = select.select([s for _, s in socks], [], [], left)
            for g, s in socks:
                if s not in r:
                    continue
                while True:
                    try:
                        data, anc, _, _ = s.recvmsg(2048, 64)
                    except BlockingIOError:
                        break
                    t = None
                    for level, typ, val in anc:
                        if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS and len(val) >= 16:
                            sec, nsec = struct.unpack("=qq", val[:16])
                            t = sec + nsec / 1e9
                    if t is None:
                        t = time.time()
                    if len(data) >= 24:
                        groups[g].add(t, *struct.unpack("!Qdd", data[:24]))
                    elif len(data) >= 8:
                        groups[g].add(t, struct.unpack("!Q", data[:8])[0], math.nan, math.nan)
    except Stop:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    phases = read_phases(opts.get("phases"))
    stopped = time.time()
    for g, _ in socks:
        st = groups[g]
        seqs = st.seq
        ph = list(phases)
        if ph and ph[-1][0] != "end":  # the sender still runs: up to what arrived
            ph.append(("end", max(ph[-1][1], max(seqs) + 1 if seqs else 0), stopped))
        lo = 0
        hi = ph[-1][1] if ph else (max(seqs) + 1 if seqs else 0)
        t_end = ph[-1][2] if ph else None
        line = phase_stats(st, lo, hi, t_end)
        print("summary receiver=%s group=%s phase=all %s first_seq=%s last_seq=%s" % (
            name, g, " ".join("%s=%s" % kv for kv in line.items()),
            min(seqs) if seqs else "-", max(seqs) if seqs else "-"), flush=True)
        for i, (pname, pseq, ptime) in enumerate(ph[:-1]):
            nseq, ntime = ph[i + 1][1], ph[i + 1][2]
            line = phase_stats(st, pseq, nseq, ntime)
            print("summary receiver=%s group=%s phase=%s %s phase_start=%.6f" % (
                name, g, pname, " ".join("%s=%s" % kv for kv in line.items()), ptime), flush=True)


def send(argv):
    opts, argv = options(argv, {"marks"})
    if len(argv) < 5:
        sys.exit(__doc__)
    ifname, pps, seconds, hop, groups = argv[0], float(argv[1]), float(argv[2]), int(argv[3]), argv[4:]
    marks = opts.get("marks")
    idx = socket.if_nametoindex(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hop)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    interval = 1.0 / pps
    n = int(pps * seconds) if seconds > 0 else None
    # i: next sequence number; gap: the longest time between two ticks
    # since the last mark (a stalled sender, not the network).
    state = {"i": 0, "gap": 0.0}

    def mark(kind):
        if marks:
            with open(marks, "a") as f:
                f.write("%s %d %.6f %.1f\n" % (kind, state["i"], time.time(), state["gap"] * 1000))
        state["gap"] = 0.0

    signal.signal(signal.SIGUSR1, lambda *_: mark("mark"))
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    t0 = time.monotonic()
    prev = None
    try:
        while n is None or state["i"] < n:
            now = time.monotonic()
            if prev is not None and now - prev > state["gap"]:
                state["gap"] = now - prev
            prev = now
            payload = struct.pack("!Qdd", state["i"], time.time(), interval)
            for g in groups:
                try:
                    s.sendto(payload, (g, PORT, 0, idx))
                except OSError:
                    pass  # e.g. ENOBUFS: the receivers count it as lost
            state["i"] += 1
            delay = t0 + state["i"] * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except Stop:
        pass
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    mark("end")
    print("sent", state["i"], "per group", flush=True)


def parse_summary(line):
    p = line.split()
    if not p or p[0] != "summary":
        return None
    return dict(kv.split("=", 1) for kv in p[1:] if "=" in kv)


def report(argv):
    opts, files = options(argv, {"check", "max-gap-ms", "phases"})
    rows = []
    for path in files:
        with open(path) as f:
            for line in f:
                r = parse_summary(line)
                if r:
                    rows.append(r)
    # The sender's longest time between two ticks in each phase: written
    # with the mark that ended the phase.
    src = {}
    phases = read_phases(opts.get("phases"))
    if opts.get("phases") and os.path.exists(opts["phases"]):
        with open(opts["phases"]) as f:
            lines = [l.split() for l in f if len(l.split()) >= 3]
        for k in range(len(lines) - 1):
            if len(lines[k + 1]) >= 4:
                src[lines[k][0]] = lines[k + 1][3]
    order = [p[0] for p in phases]
    for r in rows:
        if r["phase"] not in order and r["phase"] != "all":
            order.append(r["phase"])
    order.append("all")
    rows.sort(key=lambda r: (order.index(r["phase"]), r["receiver"], r["group"]))
    hdr = ("phase", "receiver", "group", "sent", "received", "lost", "max gap ms", "gap end s", "net gap ms", "duplicates")
    fmt = "%-10s %-8s %-11s %7s %9s %6s %11s %10s %11s %11s"
    print(fmt % hdr)
    for r in rows:
        at = "-"
        if r.get("max_gap_end", "-") != "-" and "phase_start" in r:
            at = "%.3f" % (float(r["max_gap_end"]) - float(r["phase_start"]))
        print(fmt % (r["phase"], r["receiver"], r["group"], r["sent"], r["received"], r["lost"],
                     r["max_gap_ms"], at, r.get("net_gap_ms", "-"), r["duplicates"]))
    print("max gap: longest time between two arrivals; gap end s: when it ended, counted from the start of")
    print("the phase; net gap: the same without the sender's own pauses (see mcast.py).")
    if src:
        print("sender's longest pause between two ticks, ms: " +
              ", ".join("%s %s" % (p, src[p]) for p in order if p in src))
    if "check" not in opts:
        return 0
    limit = float(opts.get("max-gap-ms", "inf"))
    bad = []
    for phase in opts["check"].split(","):
        got = [r for r in rows if r["phase"] == phase]
        if not got:
            bad.append("phase %s: no data" % phase)
        for r in got:
            if int(r["received"]) == 0:
                bad.append("%s %s %s: nothing received" % (phase, r["receiver"], r["group"]))
            net = float(r.get("net_gap_ms", r["max_gap_ms"]))
            if net > limit:
                bad.append("%s %s %s: longest gap %s ms (net %.1f ms) > %.1f ms" % (
                    phase, r["receiver"], r["group"], r["max_gap_ms"], net, limit))
            elif float(r["max_gap_ms"]) > limit:
                print("WARN: %s %s %s: longest gap %s ms > %.1f ms, but the sender paused: net %.1f ms" % (
                    phase, r["receiver"], r["group"], r["max_gap_ms"], limit, net))
    for b in bad:
        print("FAIL:", b)
    if bad:
        return 1
    print("PASS: every group received in phases %s; longest net gap within %.1f ms" % (opts["check"], limit))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "recv":
        recv(sys.argv[2:])
    elif cmd == "send":
        send(sys.argv[2:])
    elif cmd == "report":
        sys.exit(report(sys.argv[2:]))
    else:
        sys.exit(__doc__)
