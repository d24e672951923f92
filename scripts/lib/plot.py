#!/usr/bin/python3
"""hotcast benchmark report: bench/results.md and its plots (matplotlib).

  plot.py results --run RUNDIR --out DIR
      Reads the outputs scripts/bench left in RUNDIR and writes DIR/results.md
      and, for the data present, DIR/fastpath-pps.png, DIR/failover-vrrp.png
      and DIR/failover-gap.png. A missing input skips its section or plot with
      a message (on stderr and in results.md); never an error.

  plot.py fastpath CSV PNG          the fast-path plot alone
  plot.py vrrp FAILOVER_MD PNG      the VRRP6 failover plot alone
  plot.py gap GAP_CSV PNG [FAILOVER_MD]   the hot/cold gap plot alone

Inputs (in RUNDIR, as scripts/bench leaves them):
  machine.env     key=value: date, cpu, cores, kernel, ip6mr (yes|no: the
                  kernel has CONFIG_IPV6_MROUTE, /proc/net/ip6_mr_vif), os,
                  mem_mib, load_start, load_end, go, commit, mode, args
  steps.tsv       step, status (ok|failed|skipped), exit code, seconds, note
  fastpath.csv    scripts/benchfast's CSV (report.go WriteCSV): variant,
                  fanout, path (hotcast|kernel), round, seconds, offered_pps,
                  accepted_pps, receiver, in_route, pps, then (newer files)
                  baseline (ip6mr|bridge), generator (xdp|trafgen), gen_pps;
                  one line per receiver and run
  fastpath.md     scripts/benchfast's tables
  failover.md     TestBenchFailover's document (internal/e2evrrp): a summary
                  table per advert interval and a "Runs" table; failover.log
                  (go test -v) is the fallback when the document is missing
  failover-gap.csv  from scripts/bench-rbs: interval_ms, mode
                  (hot|cold|keepalived), run, gap_ms (optional: mdi_ms,
                  duplicates); else
                  bench/raw/failover-gap.csv (marked as older than the run)
  rbs.md          scripts/bench-rbs's document
  install.log, mld.log, mroute.log   go test -bench output
"""

import argparse
import csv
import datetime
import os
import re
import statistics
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter
except ImportError:  # the report still gets written, without plots
    plt = None

KERNEL_COLOR = "#7f7f7f"
HOTCAST_COLOR = "#d95f02"
MODE_STYLE = {
    "hot": ("#1b9e77", "o", "RBS hot backup"),
    "cold": ("#7570b3", "s", "cold standby"),
    "keepalived": ("#e7298a", "^", "keepalived"),
}


def warn(msg):
    print("plot.py: " + msg, file=sys.stderr)


# ---------------------------------------------------------------- parsing


def read_env(path):
    env = {}
    try:
        with open(path) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    env[k] = v
    except OSError:
        pass
    return env


def read_steps(path):
    steps = []
    try:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if len(p) >= 4:
                    steps.append(
                        {"step": p[0], "status": p[1], "rc": p[2], "secs": p[3], "note": p[4] if len(p) > 4 else ""}
                    )
    except OSError:
        pass
    return steps


# A run whose receivers got at least this share of what was offered is
# generator-bound (scripts/benchfast: generatorBoundShare).
GENERATOR_BOUND = 0.98

BASELINE_LABEL = {
    "ip6mr": "kernel ip6mr (smcroute)",
    "bridge": "kernel bridge (MLD snooping)",
}


def fastpath_rates(path):
    """{variant: {fanout: {path: [per-receiver pps per round]}}}, the
    bystanders' total pps (must be 0), and per (variant, fanout, path) the
    offered pps per round, the kernel baselines and the generators seen
    (files before the baseline column: ip6mr, trafgen)."""
    runs = {}  # (variant, fanout, path, round) -> [pps of routed receivers]
    offered = {}  # (variant, fanout, path, round) -> offered pps
    baselines, generators = {}, set()
    bystanders = 0.0
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["variant"], int(row["fanout"]), row["path"], int(row["round"]))
            pps = float(row["pps"])
            offered[key] = float(row.get("offered_pps") or 0)
            baselines.setdefault(row["variant"], set()).add(row.get("baseline") or "ip6mr")
            generators.add(row.get("generator") or "trafgen")
            if row["in_route"] == "true":
                runs.setdefault(key, []).append(pps)
            else:
                bystanders += pps
    out = {}
    off = {}
    for (variant, fanout, p, rnd), rs in sorted(runs.items()):
        out.setdefault(variant, {}).setdefault(fanout, {}).setdefault(p, []).append(sum(rs) / len(rs))
        off.setdefault((variant, fanout, p), []).append(offered.get((variant, fanout, p, rnd), 0))
    return out, bystanders, {"offered": off, "baselines": baselines, "generators": generators}


def generator_bound(delivered, offered):
    """Medians: delivered at least 98% of offered."""
    return bool(delivered) and bool(offered) and statistics.median(delivered) >= GENERATOR_BOUND * statistics.median(offered)


def baseline_label(names):
    return " / ".join(BASELINE_LABEL.get(b, "kernel " + b) for b in sorted(names)) or BASELINE_LABEL["ip6mr"]


_DUR = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_MS = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "μs": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def duration_ms(s):
    """A Go duration string ("1s", "100ms", "3.2838s", "1m2.5s") in ms."""
    s = s.strip()
    parts = _DUR.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError("not a duration: %r" % s)
    return sum(float(n) * _UNIT_MS[u] for n, u in parts)


def md_tables(text):
    """Every Markdown table in text: a list of (header cells, rows of cells)."""
    tables, cur = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split("|")]
            if cur is None:
                cur = (cells, [])
            elif all(re.fullmatch(r":?-+:?", c) for c in cells):
                pass
            else:
                cur[1].append(cells)
        elif cur is not None:
            tables.append(cur)
            cur = None
    if cur is not None:
        tables.append(cur)
    return tables


def num(s):
    """The leading number of a cell ("3530.0 ms", "+0.8 ms", "1,234")."""
    m = re.match(r"\s*([+-]?[0-9][0-9,]*\.?[0-9]*)", s)
    if not m:
        raise ValueError("no number in %r" % s)
    return float(m.group(1).replace(",", ""))


def failover_from_md(path):
    """{interval_ms: {"mdi": ms, "takeover": [ms], "first": [ms]}} from
    TestBenchFailover's document (the last summary row and the runs of each
    interval win: a document with a rerun section has the rerun last)."""
    with open(path) as f:
        text = f.read()
    data = {}
    for head, rows in md_tables(text):
        h = [c.lower() for c in head]
        if "master_down_interval" in h and "advert interval" in h:
            i, m = h.index("advert interval"), h.index("master_down_interval")
            for r in rows:
                d = data.setdefault(duration_ms(r[i]), {"takeover": [], "first": []})
                d["mdi"] = num(r[m])
        elif "takeover (ms)" in h and "first frame (ms)" in h:
            i, k, ff = h.index("interval"), h.index("takeover (ms)"), h.index("first frame (ms)")
            fresh = {}
            for r in rows:
                iv = duration_ms(r[i])
                d = fresh.setdefault(iv, {"takeover": [], "first": []})
                d["takeover"].append(num(r[k]))
                d["first"].append(num(r[ff]))
            for iv, d in fresh.items():
                e = data.setdefault(iv, {})
                e["takeover"], e["first"] = d["takeover"], d["first"]
    return {iv: d for iv, d in data.items() if d.get("first")}


_FO_RUN = re.compile(r"^=== RUN\s+TestBenchFailover/(\S+)")
_FO_LINE = re.compile(
    r"run \d+: phase \S+, B Master after (\S+), first frame after (\S+) \(Master_Down_Interval (\S+)\)"
)


def failover_from_log(path):
    """The same from `go test -v` output, for a run that stopped early."""
    data, iv = {}, None
    with open(path, errors="replace") as f:
        for line in f:
            m = _FO_RUN.search(line)
            if m:
                try:
                    iv = duration_ms(m.group(1))
                except ValueError:
                    iv = None
                continue
            m = _FO_LINE.search(line)
            if m and iv is not None:
                d = data.setdefault(iv, {"takeover": [], "first": []})
                d["takeover"].append(duration_ms(m.group(1)))
                d["first"].append(duration_ms(m.group(2)))
                d["mdi"] = duration_ms(m.group(3))
    return data


def read_gaps(path):
    """({mode: {interval_ms: [gap_ms]}}, {interval_ms: mdi_ms},
    {(mode, interval_ms): duplicates}) from interval_ms,mode,run,gap_ms; the
    optional columns mdi_ms and duplicates (scripts/bench-rbs writes them)
    fill the other two."""
    gaps, mdi, dups = {}, {}, {}
    with open(path, newline="") as f:
        rd = csv.DictReader(f)
        need = {"interval_ms", "mode", "gap_ms"}
        if not rd.fieldnames or not need <= set(rd.fieldnames):
            raise ValueError("%s: columns %s, want interval_ms,mode,run,gap_ms" % (path, rd.fieldnames))
        for row in rd:
            try:
                iv, gap = float(row["interval_ms"]), float(row["gap_ms"])
            except (TypeError, ValueError):
                continue
            mode = row["mode"].strip()
            gaps.setdefault(mode, {}).setdefault(iv, []).append(gap)
            try:
                mdi[iv] = float(row.get("mdi_ms") or "")
            except ValueError:
                pass
            try:
                dups[(mode, iv)] = dups.get((mode, iv), 0) + int(row.get("duplicates") or "")
            except ValueError:
                pass
    return gaps, mdi, dups


_BENCH = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$")


def gobench(path):
    """{name: {unit: [values]}} in the order benchmarks first appear."""
    out = {}
    with open(path, errors="replace") as f:
        for line in f:
            m = _BENCH.match(line.strip())
            if not m:
                continue
            metrics = out.setdefault(m.group(1), {})
            fields = m.group(3).split()
            for v, unit in zip(fields[::2], fields[1::2]):
                try:
                    metrics.setdefault(unit, []).append(float(v))
                except ValueError:
                    pass
    return out


# ---------------------------------------------------------------- formatting


def fmt_ns(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return "%.3g %s" % (ns / scale, unit)
    return "%.3g ns" % ns


def fmt_int(v):
    return "{:,}".format(int(round(v)))


def fmt_ms(v):
    return "%.1f ms" % v


def interval_label(ms):
    if ms >= 1000 and ms % 1000 == 0:
        return "%ds" % (ms // 1000)
    if ms >= 1 and ms == int(ms):
        return "%dms" % ms
    return "%gms" % ms


def demote(md, top=3, drop_first_heading=True):
    """md with its first heading dropped (the section supplies its own) and
    the others shifted so that the highest becomes level `top`."""
    lines = md.splitlines()
    if drop_first_heading:
        for i, line in enumerate(lines):
            if line.startswith("#"):
                del lines[i]
                break
    levels = [len(l) - len(l.lstrip("#")) for l in lines if re.match(r"#+ ", l)]
    shift = top - min(levels) if levels else 0
    out = []
    for line in lines:
        if re.match(r"#+ ", line):
            n = len(line) - len(line.lstrip("#"))
            line = "#" * max(1, min(6, n + shift)) + line[n:]
        out.append(line)
    return "\n".join(out).strip("\n") + "\n"


# ---------------------------------------------------------------- plots


def plot_fastpath(rates, png, subtitle="", info=None):
    variants = [v for v in ("sink", "socket") if v in rates] + [v for v in rates if v not in ("sink", "socket")]
    titles = {
        "sink": "sink receivers (XDP count-and-drop)",
        "socket": "socket receivers (UDP socket per receiver)",
    }
    fig, axes = plt.subplots(1, len(variants), figsize=(6.2 * len(variants), 5.2), squeeze=False)
    ymax = 0
    for v in variants:
        for per in rates[v].values():
            for rs in per.values():
                ymax = max(ymax, max(rs) / 1e3)
    for ax, v in zip(axes[0], variants):
        fanouts = sorted(rates[v])
        x = list(range(len(fanouts)))
        w = 0.38
        klabel = baseline_label((info or {}).get("baselines", {}).get(v, set()))
        for off, path, color, label in (
            (-w / 2, "kernel", KERNEL_COLOR, klabel),
            (w / 2, "hotcast", HOTCAST_COLOR,
             "hotcast (clone egress)" if v == "socket" else "hotcast (XDP egress)"),
        ):
            med, lo, hi, hatch = [], [], [], []
            for n in fanouts:
                offered = (info or {}).get("offered", {}).get((v, n, path), [])
                hatch.append("//" if generator_bound(rates[v][n].get(path, []), offered) else "")
                rs = [r / 1e3 for r in rates[v][n].get(path, [])]
                m = statistics.median(rs) if rs else 0
                med.append(m)
                lo.append(m - min(rs) if rs else 0)
                hi.append(max(rs) - m if rs else 0)
            bars = ax.bar([i + off for i in x], med, w, color=color, label=label, yerr=[lo, hi], capsize=3,
                          error_kw={"elinewidth": 1, "ecolor": "black"})
            for b, h in zip(bars, hatch):
                if h:  # generator-bound: the generator, not the path, set the rate
                    b.set_hatch(h)
                    b.set_edgecolor("black")
        for i, n in enumerate(fanouts):
            k = rates[v][n].get("kernel", [])
            h = rates[v][n].get("hotcast", [])
            if k and h and statistics.median(k) > 0:
                ratio = statistics.median(h) / statistics.median(k)
                top = max(max(k), max(h)) / 1e3
                ax.annotate("%.2fx" % ratio, (i, top), textcoords="offset points", xytext=(0, 6),
                            ha="center", fontsize=10, fontweight="bold")
        ax.set_xticks(x)
        ax.set_xticklabels([str(n) for n in fanouts])
        ax.set_xlabel("fan-out N (receivers in the route)")
        ax.set_ylabel("delivered packets/s per receiver (kpps)")
        ax.set_title(titles.get(v, v))
        ax.set_ylim(0, ymax * 1.15)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.legend(loc="upper right", fontsize=9)
    fig.suptitle("Fast path: IPv6 multicast delivered per receiver, hotcast vs the kernel baseline", fontsize=13)
    if subtitle:
        fig.text(0.5, 0.005, subtitle, ha="center", va="bottom", fontsize=8.5, color="#444444")
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _log_ms_axes(ax, xs):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([interval_label(x) for x in xs])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: "%g" % y))
    ax.grid(which="major", alpha=0.35)
    ax.grid(which="minor", alpha=0.12)


def _jitter(x, i, n, spread=0.10):
    """Spread n points around x on a log axis."""
    if n <= 1:
        return x
    return x * 10 ** (spread * (i / (n - 1) - 0.5))


def plot_vrrp(fo, png, subtitle=""):
    """One panel per advert interval (largest first), linear ms: each run's
    takeover and first frame against the window (MDI - interval, MDI] in
    which RFC 9568 §6.1 puts the Backup's takeover."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ivs = sorted(fo, reverse=True)
    wide = len(ivs) >= 3
    fig, axes = plt.subplots(1, len(ivs), figsize=(3.6 * len(ivs) + 1.2 if wide else 9.5, 5.6), squeeze=False)
    series = (("takeover", "#33a02c", "x", "takeover: the Backup becomes Master"),
              ("first", HOTCAST_COLOR, "o", "first frame forwarded by the new Master"))
    for ax, iv in zip(axes[0], ivs):
        d = fo[iv]
        mdi = d.get("mdi")
        ys_all = d["takeover"] + d["first"]
        lo, hi = min(ys_all), max(ys_all)
        if mdi is not None:
            ax.axhspan(mdi - iv, mdi, color="#1f78b4", alpha=0.12)
            ax.axhline(mdi, color="#1f78b4", ls="--", lw=1.5)
            ax.annotate("MDI %s ms" % ("%g" % round(mdi, 1)), (1.45, mdi), textcoords="offset points",
                        xytext=(0, 3), ha="right", va="bottom", fontsize=8.5, color="#1f78b4")
            lo, hi = min(lo, mdi - iv), max(hi, mdi)
        pad = (hi - lo) * 0.12 or 1
        for x, (key, color, marker, _) in enumerate(series):
            ys = d[key]
            n = len(ys)
            xs = [x + (0.3 * (i / (n - 1) - 0.5) if n > 1 else 0) for i in range(n)]
            ax.scatter(xs, ys, s=28, color=color, marker=marker, alpha=0.8, linewidths=1.3, zorder=3)
            m = statistics.median(ys)
            ax.hlines(m, x - 0.25, x + 0.25, color="black", lw=2, zorder=4)
            ax.annotate("%.1f" % m if m < 100 else "%.0f" % m, (x + 0.27, m), va="center", fontsize=8.5)
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylim(max(0, lo - pad), hi + pad)
        ax.set_xticks([0, 1])
        ax.set_xticklabels(["takeover", "first frame"])
        ax.set_title("advert interval %s" % interval_label(iv), fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0][0].set_ylabel("time after the Master's loss (ms)")
    handles = [Line2D([], [], color=c, marker=m, ls="none", label=l + " (each run)") for _, c, m, l in series]
    handles += [Line2D([], [], color="black", lw=2, label="median"),
                Line2D([], [], color="#1f78b4", ls="--", label="Master_Down_Interval (MDI, RFC 9568 §6.1)"),
                Patch(color="#1f78b4", alpha=0.12, label="expected window (MDI − interval, MDI]")]
    fig.legend(handles=handles, loc="lower center", ncol=3 if wide else 2, fontsize=8.5,
               bbox_to_anchor=(0.5, 0.035), frameon=False)
    fig.suptitle("VRRP6 failover on Master loss: takeover and first frame per advert interval", fontsize=13)
    if subtitle:
        fig.text(0.5, 0.005, subtitle, ha="center", va="bottom", fontsize=8.5, color="#444444")
    fig.tight_layout(rect=(0, 0.14 if wide else 0.19, 1, 0.96))
    fig.savefig(png, dpi=110)
    plt.close(fig)


def plot_gap(gaps, png, fo=None, mdi=None, subtitle=""):
    modes = [m for m in ("hot", "cold", "keepalived") if m in gaps] + sorted(
        m for m in gaps if m not in ("hot", "cold", "keepalived"))
    ivs = sorted({iv for m in gaps.values() for iv in m})
    fig, ax = plt.subplots(figsize=(8.5, 6))
    n = len(modes)
    for k, mode in enumerate(modes):
        color, marker, label = MODE_STYLE.get(mode, (None, "D", mode))
        off = 10 ** (0.06 * (k - (n - 1) / 2))
        pts = sorted(gaps[mode])
        for j, iv in enumerate(pts):
            ys = gaps[mode][iv]
            xs = [_jitter(iv * off, i, len(ys), 0.04) for i in range(len(ys))]
            ax.scatter(xs, ys, s=20, color=color, marker=marker, alpha=0.6)
        ax.plot([iv * off for iv in pts], [statistics.median(gaps[mode][iv]) for iv in pts],
                color=color, marker=marker, lw=1.8, ms=8, mfc="white", mew=1.8, zorder=4,
                label=label)
    if mdi:
        mivs = sorted(mdi)
        ax.plot(mivs, [mdi[iv] for iv in mivs], "--", color="#1f78b4", lw=1.2,
                label="VRRP6 Master_Down_Interval of the Backup")
    elif fo:
        fivs = sorted(iv for iv in fo if fo[iv].get("mdi") is not None)
        if fivs:
            ax.plot(fivs, [fo[iv]["mdi"] for iv in fivs], "--", color="#1f78b4", lw=1.2,
                    label="VRRP6 Master_Down_Interval (bench-failover)")
    _log_ms_axes(ax, ivs)
    ax.set_xlim(ivs[0] / 2.2, ivs[-1] * 2.2)
    ax.set_xlabel("VRRP6 advertisement interval")
    ax.set_ylabel("stream gap at the receiver across failover (ms, log scale)")
    ax.set_title("Failover gap: hot backup vs cold standby", fontsize=13)
    ax.legend(loc="lower right", fontsize=8.5, title="filled: each run; open, joined: median", title_fontsize=8.5)
    if subtitle:
        fig.text(0.5, 0.005, subtitle, ha="center", va="bottom", fontsize=8.5, color="#444444")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(png, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- results.md


class Report:
    def __init__(self, run, out):
        self.run, self.out = run, out
        self.env = read_env(os.path.join(run, "machine.env"))
        self.steps = {s["step"]: s for s in read_steps(os.path.join(run, "steps.tsv"))}
        self.lines = []
        self.summary = []  # headline bullets
        self.pngs = []

    def p(self, s=""):
        self.lines.append(s)

    def path(self, name):
        return os.path.join(self.run, name)

    def status(self, step):
        s = self.steps.get(step)
        if not s:
            return "not run"
        if s["status"] == "ok":
            return "ok"
        if s["status"] == "failed":
            return "**FAILED** (exit %s)" % s["rc"]
        return "skipped: " + (s["note"] or "")

    def machine_line(self):
        e = self.env
        parts = [e.get("cpu") or "unknown CPU", "%s cores" % e.get("cores", "?"), "kernel " + e.get("kernel", "?")]
        if self.env.get("ip6mr") in ("yes", "no"):
            parts[-1] += " (CONFIG_IPV6_MROUTE: %s)" % self.env["ip6mr"]
        if e.get("os"):
            parts.append(e["os"])
        if e.get("mem_mib"):
            parts.append("%.1f GiB RAM" % (int(e["mem_mib"]) / 1024))
        return ", ".join(parts)

    def subtitle(self):
        e = self.env
        return "%s; %s cores; kernel %s; %s" % (
            e.get("cpu", "?"), e.get("cores", "?"), e.get("kernel", "?"), (e.get("date") or "")[:10])

    def plot(self, name, fn, *args, **kw):
        png = os.path.join(self.out, name)
        if plt is None:
            msg = "%s: not drawn (matplotlib missing: apt-get install python3-matplotlib)" % name
            warn(msg)
            return msg
        try:
            fn(*args, png, **kw)
        except Exception as e:  # a plot never takes the report down
            msg = "%s: not drawn (%s)" % (name, e)
            warn(msg)
            return msg
        self.pngs.append(name)
        print("plot.py: wrote " + png, file=sys.stderr)
        return None

    # -- sections

    def ip6mr_fact(self):
        """The kernel's CONFIG_IPV6_MROUTE fact, from machine.env."""
        have = self.env.get("ip6mr")
        if have == "yes":
            return "CONFIG_IPV6_MROUTE: yes (/proc/net/ip6_mr_vif present)"
        if have == "no":
            return "no CONFIG_IPV6_MROUTE (/proc/net/ip6_mr_vif absent)"
        return None

    def fastpath(self):
        csvp = self.path("fastpath.csv")
        rates, bystanders, info = None, 0, None
        err = None
        if os.path.exists(csvp):
            try:
                rates, bystanders, info = fastpath_rates(csvp)
            except (OSError, KeyError, ValueError) as e:
                err = e
        names = set()
        for bs in ((info or {}).get("baselines") or {}).values():
            names |= bs
        if not names:
            names = {"ip6mr"} if self.env.get("ip6mr") != "no" else {"bridge"}
        title = " / ".join({"ip6mr": "kernel ip6mr", "bridge": "kernel bridge (MLD snooping)"}.get(b, b) for b in sorted(names))
        self.p("## Fast path: hotcast XDP vs %s" % title)
        self.p()
        how = {
            "ip6mr": "the kernel's ip6mr (smcroute installs the same (S,G) route)",
            "bridge": "the kernel's own L2 multicast replication (the router's interfaces as the ports of a Linux "
                      "bridge with MLD snooping, `mcast_snooping 1`, the ports joined by the same receivers)",
        }
        gens = (info or {}).get("generators") or set()
        gen = " and ".join(sorted({"xdp": "xdpgen (XDP live frames, one pinned CPU)"}.get(g, g) for g in gens)) or "the generator"
        self.p("`scripts/bench-fastpath` (%s). One IPv6 multicast stream from %s, 1 in → N out over veth, through "
               "hotcast's XDP path and through %s alternately; offered and delivered packets per second per receiver. "
               "Method: `docs/benchmark.md`." % (self.status("fastpath"), gen, " / ".join(how.get(b, b) for b in sorted(names))))
        self.p()
        fact = self.ip6mr_fact()
        if fact:
            self.p("Kernel: %s; kernel baseline: %s." % (
                fact, " / ".join({"ip6mr": "ip6mr", "bridge": "Linux bridge with MLD snooping"}.get(b, b) for b in sorted(names))))
            self.p()
        if err is not None:
            self.p("(%s: unreadable: %s)" % (csvp, err))
            self.p()
        elif rates is None:
            warn("no fast-path CSV in %s: fastpath-pps.png skipped" % self.run)
            self.p("(No fast-path CSV from this run: plot skipped.)")
            self.p()
        if rates:
            nrounds = max(len(rs) for v in rates.values() for per in v.values() for rs in per.values())
            msg = self.plot("fastpath-pps.png", plot_fastpath, rates,
                            subtitle="bars: median of %d round(s); whiskers: min–max; label: hotcast / kernel; "
                                     "hatched: generator-bound (delivered ≥ 98%% of offered). %s"
                            % (nrounds, self.subtitle()), info=info)
            if msg is None:
                self.p("![Fast path: delivered pps per receiver, hotcast vs the kernel baseline](fastpath-pps.png)")
            else:
                self.p("(" + msg + ")")
            self.p()
            if bystanders > 0:
                self.p("**The bystander receiver (never in the route) received %.0f pps.**" % bystanders)
                self.p()
            for v in sorted(rates):
                ratios, bound = [], []
                for n in sorted(rates[v]):
                    k, h = rates[v][n].get("kernel"), rates[v][n].get("hotcast")
                    if k and h and statistics.median(k) > 0:
                        ratios.append((n, statistics.median(h) / statistics.median(k)))
                    for p, d in (("kernel", k), ("hotcast", h)):
                        if d and generator_bound(d, info["offered"].get((v, n, p), [])):
                            bound.append("%s at N=%d" % (p, n))
                if ratios:
                    self.summary.append("Fast path, %s receivers: hotcast delivers %s the pps per receiver of the %s at fan-out %s; generator-bound: %s." % (
                        v, " / ".join("%.2fx" % r for _, r in ratios), baseline_label(info["baselines"].get(v, set())),
                        " / ".join(str(n) for n, _ in ratios), ", ".join(bound) or "none"))
        mdp = self.path("fastpath.md")
        if os.path.exists(mdp):
            with open(mdp) as f:
                md = f.read()
            # The harness's first paragraph is the run's setup line.
            self.p(demote(md))
        else:
            self.p("(No table: the step did not finish.)")
            self.p()

    def failover_data(self):
        for name, fn in (("failover.md", failover_from_md), ("failover.log", failover_from_log)):
            p = self.path(name)
            if os.path.exists(p):
                try:
                    fo = fn(p)
                except (OSError, ValueError, IndexError) as e:
                    warn("%s: %s" % (p, e))
                    continue
                if fo:
                    return fo, name
        return None, None

    def failover(self):
        self.p("## VRRP6 failover on Master loss")
        self.p()
        self.p("`scripts/bench-failover` (%s): two hotcast routers, a multicast stream through the Master; the "
               "Master's links go down at a random point of its advert cycle; time to the Backup's takeover and "
               "to the first frame it forwards, per advertisement interval, against the Master_Down_Interval "
               "(RFC 9568 §6.1). Method: `bench/failover.md`, TestBenchFailover in `internal/e2evrrp`."
               % self.status("failover"))
        self.p()
        fo, src = self.failover_data()
        self.fo = fo
        if fo:
            msg = self.plot("failover-vrrp.png", plot_vrrp, fo, subtitle=self.subtitle())
            self.p("![VRRP6 failover: takeover and first frame per advert interval](failover-vrrp.png)"
                   if msg is None else "(" + msg + ")")
            self.p()
            if src != "failover.md":
                self.p("(From the step's log: it did not write its document.)")
                self.p()
            self.p("| advert interval | Master_Down_Interval | runs | takeover median | first frame median | first frame max | max − MDI |")
            self.p("|--:|--:|--:|--:|--:|--:|--:|")
            for iv in sorted(fo, reverse=True):
                d = fo[iv]
                mdi = d.get("mdi")
                self.p("| %s | %s | %d | %s | %s | %s | %s |" % (
                    interval_label(iv), fmt_ms(mdi) if mdi else "?", len(d["first"]),
                    fmt_ms(statistics.median(d["takeover"])), fmt_ms(statistics.median(d["first"])),
                    fmt_ms(max(d["first"])), "%+.1f ms" % (max(d["first"]) - mdi) if mdi else "?"))
                self.summary.append("VRRP6 failover, %s adverts: first frame through the new Master after %s median, %s max (Master_Down_Interval %s)." % (
                    interval_label(iv), fmt_ms(statistics.median(d["first"])), fmt_ms(max(d["first"])),
                    fmt_ms(mdi) if mdi else "?"))
            self.p()
            p = self.path("failover.md")
            if os.path.exists(p):
                for head, rows in md_tables(open(p).read()):
                    if "pps" in [c.lower() for c in head]:
                        pps = [r[[c.lower() for c in head].index("pps")] for r in rows]
                        try:
                            res = "one frame every %.1f ms: the resolution of *first frame*" % (1000 / min(num(x) for x in pps))
                        except (ValueError, ZeroDivisionError):
                            res = "it bounds the resolution of *first frame*"
                        self.p("Stream rate at the host: %s pps (%s). The per-run table is in the step's document "
                               "(`failover.md` in the run directory)." % (" / ".join(pps), res))
                        self.p()
                        break
        else:
            warn("no failover data in %s: failover-vrrp.png skipped" % self.run)
            self.p("(No failover data from this run: plot skipped.)")
            self.p()

    def rbs(self):
        self.p("## RBS: batch backup, real-time latency, failover gap hot vs cold")
        self.p()
        self.p("`scripts/bench-rbs` (%s)." % self.status("rbs"))
        self.p()
        gp, stale = self.path("failover-gap.csv"), False
        if not os.path.exists(gp):
            gp, stale = os.path.join("bench", "raw", "failover-gap.csv"), True
        if os.path.exists(gp):
            try:
                gaps, mdi, dups = read_gaps(gp)
            except (OSError, ValueError) as e:
                gaps = None
                warn(str(e))
                self.p("(%s)" % e)
            if gaps:
                sub = self.subtitle()
                if stale:
                    when = datetime.datetime.fromtimestamp(os.path.getmtime(gp)).strftime("%Y-%m-%d %H:%M")
                    sub = "data: %s, written %s, not by this run" % (gp, when)
                    self.p("(The gap plot uses `%s`, written %s by an earlier run of scripts/bench-rbs.)" % (gp, when))
                    self.p()
                msg = self.plot("failover-gap.png", plot_gap, gaps, fo=getattr(self, "fo", None), mdi=mdi,
                                subtitle=sub)
                self.p("![Failover gap, hot vs cold, per advert interval](failover-gap.png)"
                       if msg is None else "(" + msg + ")")
                self.p()
                if not os.path.exists(self.path("rbs.md")):  # else its own table follows
                    self.gap_table(gaps, mdi, dups)
                for iv in sorted({iv for m in gaps.values() for iv in m}, reverse=True):
                    parts = ["%s %s" % (m, fmt_ms(statistics.median(gaps[m][iv]))) for m in gaps if iv in gaps[m]]
                    self.summary.append("Failover gap, %s adverts (median): %s." % (interval_label(iv), ", ".join(parts)))
        else:
            msg = ("no RBS gap data (bench/raw/failover-gap.csv, columns interval_ms,mode,run,gap_ms, "
                   "written by scripts/bench-rbs): failover-gap.png skipped")
            warn(msg)
            self.p("(No failover-gap data: `bench/raw/failover-gap.csv` (columns "
                   "`interval_ms,mode,run,gap_ms`, mode hot, cold or keepalived) is absent; the hot/cold gap plot "
                   "is skipped.)")
            self.p()
        mdp = self.path("rbs.md")
        if os.path.exists(mdp):
            with open(mdp) as f:
                md = f.read()
            # The hand-written analysis bench-rbs carries over from
            # bench/rbs.md is about earlier runs: not copied here.
            md, sep, _ = md.partition("<!-- analysis -->")
            self.p(demote(md))
            if sep:
                self.p("(Analysis: `bench/rbs.md`.)")
                self.p()

    def gap_table(self, gaps, mdi, dups):
        self.p("| advert interval | mode | runs | gap median | gap max | Master_Down_Interval | duplicates |")
        self.p("|--:|---|--:|--:|--:|--:|--:|")
        for iv in sorted({iv for m in gaps.values() for iv in m}, reverse=True):
            for mode in gaps:
                g = gaps[mode].get(iv)
                if not g:
                    continue
                self.p("| %s | %s | %d | %s | %s | %s | %s |" % (
                    interval_label(iv), mode, len(g), fmt_ms(statistics.median(g)), fmt_ms(max(g)),
                    fmt_ms(mdi[iv]) if iv in mdi else "–", dups.get((mode, iv), "–")))
        self.p()

    def control(self):
        self.p("## Control plane")
        self.p()
        benches = (
            ("install", "Route install: 100,000 (S,G) routes into the BPF maps (`ReplaceRoutes`)",
             "go test -run '^$' -bench Install100k ./bpf/"),
            ("mld", "MLDv2 report processing on one core, 64 records per report",
             "go test -run '^$' -bench ReportProcessing -cpu 1 ./ctrl/mld/"),
            ("mroute", "One join: MLD report to the BPF route map",
             "go test -run '^$' -bench ReportToMap ./ctrl/mroute/"),
            ("pimjp", "PIM Join/Prune processing on one core, (S,G) entries created, refreshed, pruned",
             "go test -run '^$' -bench JoinPruneRx -cpu 1 ./ctrl/pim/"),
        )
        self.p("| benchmark | what | status | runs | time/op (median) | other metrics (median) |")
        self.p("|---|---|---|--:|--:|---|")
        for step, what, cmd in benches:
            res = {}
            lp = self.path(step + ".log")
            if os.path.exists(lp):
                res = gobench(lp)
            if not res:
                self.p("| `%s` | %s | %s | 0 | – | – |" % (cmd, what, self.status(step)))
                continue
            for name, metrics in res.items():
                ns = metrics.get("ns/op", [])
                other = []
                for unit, vs in metrics.items():
                    if unit == "ns/op":
                        continue
                    v = statistics.median(vs)
                    other.append("%s %s" % (fmt_int(v) if v >= 100 else "%.3g" % v, unit))
                t = fmt_ns(statistics.median(ns)) if ns else "–"
                self.p("| `%s` | %s | %s | %d | %s | %s |" % (name, what, self.status(step), len(ns), t,
                                                              ", ".join(other) or "–"))
                if name == "BenchmarkInstall100k" and ns:
                    s = statistics.median(ns) / 1e9
                    self.summary.append("Route install: 100k routes in %s (%s routes/s)." % (
                        fmt_ns(statistics.median(ns)), fmt_int(100000 / s)))
                elif name.startswith("BenchmarkReportProcessing") and "records/s" in metrics:
                    self.summary.append("MLD report processing (%s): %s records/s on one core." % (
                        name.split("/", 1)[-1], fmt_int(statistics.median(metrics["records/s"]))))
                elif name == "BenchmarkReportToMap" and ns:
                    self.summary.append("MLD report to BPF route map: %s per join." % fmt_ns(statistics.median(ns)))
        self.p()

    def write(self):
        e = self.env
        body_start = len(self.lines)
        self.fastpath()
        self.failover()
        self.rbs()
        self.control()
        body = self.lines[body_start:]
        self.lines = self.lines[:body_start]

        mode = e.get("mode", "?")
        self.p("# hotcast benchmark results")
        self.p()
        self.p("Written by `make bench` (`scripts/bench%s`) on %s, commit %s%s." % (
            " " + e["args"] if e.get("args") else "", (e.get("date") or "?").replace("T", " ").replace("Z", " UTC"),
            e.get("commit") or "?", "; **quick smoke run: one short round, not for comparison**" if mode == "quick" else ""))
        self.p()
        self.p("Machine: %s. Load average (1/5/15 min) %s at the start, %s at the end; %s." % (
            self.machine_line(), e.get("load_start", "?").replace(" ", " / "), e.get("load_end", "?").replace(" ", " / "),
            e.get("go", "go ?")))
        self.p()
        self.p("## Summary")
        self.p()
        for s in self.summary:
            self.p("- " + s)
        if self.summary:
            self.p()
        self.p("| step | status | seconds |")
        self.p("|---|---|--:|")
        for name, s in self.steps.items():
            self.p("| %s | %s | %s |" % (name, self.status(name), s["secs"] if s["status"] != "skipped" else "–"))
        self.p()
        self.lines += body
        self.p("## Raw data")
        self.p()
        self.p("Each step's output and log are in the run directory `%s` (gitignored): `steps.tsv`, `machine.env`, "
               "`<step>.log`, `fastpath.csv`, `failover.md`, `rbs.md`, `failover-gap.csv`. "
               "`scripts/bench --report-only DIR` rewrites this document and its plots from one." % self.run)
        text = "\n".join(self.lines).rstrip("\n") + "\n"
        text = re.sub(r"\n{3,}", "\n\n", text)
        os.makedirs(self.out, exist_ok=True)
        path = os.path.join(self.out, "results.md")
        with open(path, "w") as f:
            f.write(text)
        print("plot.py: wrote " + path, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("results")
    r.add_argument("--run", required=True)
    r.add_argument("--out", required=True)
    f = sub.add_parser("fastpath")
    f.add_argument("csv")
    f.add_argument("png")
    v = sub.add_parser("vrrp")
    v.add_argument("md")
    v.add_argument("png")
    g = sub.add_parser("gap")
    g.add_argument("csv")
    g.add_argument("png")
    g.add_argument("failover_md", nargs="?")
    a = ap.parse_args()
    if a.cmd == "results":
        Report(a.run, a.out).write()
        return 0
    if plt is None:
        warn("matplotlib missing: apt-get install python3-matplotlib")
        return 1
    if a.cmd == "fastpath":
        rates, _, info = fastpath_rates(a.csv)
        plot_fastpath(rates, a.png, info=info)
    elif a.cmd == "vrrp":
        plot_vrrp(failover_from_md(a.md), a.png)
    elif a.cmd == "gap":
        gaps, mdi, _ = read_gaps(a.csv)
        plot_gap(gaps, a.png, fo=failover_from_md(a.failover_md) if a.failover_md else None, mdi=mdi)
    return 0


if __name__ == "__main__":
    sys.exit(main())
