#!/usr/bin/python3
"""Tiny IPv6 multicast sender/receiver for the lab (standard library only).

  mcast.py recv IFNAME SECONDS GROUP[,SOURCE] ...   -> prints "GROUP COUNT" lines
  mcast.py send IFNAME PPS SECONDS HOPLIMIT GROUP ...
"""
import socket, struct, sys, time, select

def ifindex(name):
    return socket.if_nametoindex(name)

def recv(ifname, seconds, specs):
    idx = ifindex(ifname)
    socks = []
    for spec in specs:
        group, _, source = spec.partition(",")
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((group, 5001, 0, idx))
        if source:
            # MCAST_JOIN_SOURCE_GROUP (46): struct group_source_req
            gsr = struct.pack("I4x", idx)
            gsr += struct.pack("HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, group), 0) + b"\0" * 100
            gsr = gsr[:8 + 128]
            gsr += struct.pack("HHI16sI", socket.AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, source), 0) + b"\0" * 100
            gsr = gsr[:8 + 256]
            s.setsockopt(socket.IPPROTO_IPV6, 46, gsr)
        else:
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", idx)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        s.setblocking(False)
        socks.append((spec, s))
    counts = {spec: 0 for spec, _ in socks}
    print("ready", flush=True)
    end = time.time() + seconds
    while True:
        left = end - time.time()
        if left <= 0:
            break
        r, _, _ = select.select([s for _, s in socks], [], [], left)
        for spec, s in socks:
            if s in r:
                while True:
                    try:
                        s.recv(2048)
                        counts[spec] += 1
                    except BlockingIOError:
                        break
    for spec, _ in socks:
        print(spec, counts[spec], flush=True)

def send(ifname, pps, seconds, hop, groups):
    idx = ifindex(ifname)
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hop)
    interval = 1.0 / pps
    n = int(pps * seconds)
    t0 = time.time()
    for i in range(n):
        payload = struct.pack("!Q", i)
        for g in groups:
            s.sendto(payload, (g, 5001, 0, idx))
        delay = t0 + (i + 1) * interval - time.time()
        if delay > 0:
            time.sleep(delay)
    print("sent", n, "per group", flush=True)

if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(sys.argv[2], float(sys.argv[3]), sys.argv[4:])
    elif sys.argv[1] == "send":
        send(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6:])
    else:
        sys.exit(__doc__)
