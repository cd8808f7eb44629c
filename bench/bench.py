#!/usr/bin/env python3
"""Timed workloads and the report for bench/run.sh (standard library only).

Each workload subcommand runs once against one directory and prints JSON lines
{"metric", "unit", "better", "value"} on stdout; run.sh tags them with target and run and
collects them. `report` turns the collected samples into medians, a table and a JSON file.

BENCH_CPU_PIDS="name=PID ..." names processes (the mount, its servers) whose CPU time each
workload also reports, per unit of work ("cpu_us_per_op"): on a small machine the mount and
its servers share the cores, and this shows which of them a workload's time goes to. The
times are /proc's clock ticks (10 ms): coarse for one short phase, so read medians.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

CHUNK = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def watched():
    """The processes of BENCH_CPU_PIDS, as (name, pid)."""
    return [tuple(item.split("=", 1)) for item in os.environ.get("BENCH_CPU_PIDS", "").split()]


def cpu_seconds(pid):
    """User plus system CPU time of a process so far (all its threads), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name may hold spaces: the fields counted from after its closing parenthesis.
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Span:
    """The CPU time the watched processes spend from its start until a workload emits."""

    def __init__(self):
        self.start = {name: cpu_seconds(pid) for name, pid in watched()}

    def per_op(self, ops):
        result = {}
        for name, pid in watched():
            end, start = cpu_seconds(pid), self.start.get(name)
            if end is not None and start is not None:
                result[name] = (end - start) * 1e6 / ops
        return result


def emit(metric, unit, better, value, span=None, ops=1):
    sample = {"metric": metric, "unit": unit, "better": better, "value": value}
    if span is not None and watched():
        sample["cpu_us_per_op"] = span.per_op(ops)
    print(json.dumps(sample), flush=True)


def seq_write(args):
    # The data is read into memory before the clock starts, so only the target's write path is
    # timed; it is random, so no target can compress or deduplicate it.
    with open(args.source, "rb") as f:
        data = memoryview(f.read())
    span = Span()
    start = time.perf_counter()
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for offset in range(0, len(data), CHUNK):
        os.write(fd, data[offset:offset + CHUNK])
    # Every target pays for durability the same way: one fsync before the clock stops.
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - start
    emit("seq_write", "MiB/s", "higher", len(data) / CHUNK / elapsed, span, len(data) / CHUNK)


def seq_read(args):
    buffer = bytearray(CHUNK)
    total = 0
    span = Span()
    start = time.perf_counter()
    with open(args.file, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            total += n
    elapsed = time.perf_counter() - start
    if total != os.path.getsize(args.file):
        sys.exit(f"seq_read: read {total} bytes of {os.path.getsize(args.file)}")
    emit("seq_read", "MiB/s", "higher", total / CHUNK / elapsed, span, total / CHUNK)


def rand_read(args):
    size = os.path.getsize(args.file)
    rng = random.Random(args.seed)
    offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(args.count)]
    fd = os.open(args.file, os.O_RDONLY)
    span = Span()
    start = time.perf_counter()
    for offset in offsets:
        if len(os.pread(fd, 4096, offset)) != 4096:
            sys.exit(f"rand_read: short read at {offset}")
    elapsed = time.perf_counter() - start
    os.close(fd)
    emit("rand_read_4k", "reads/s", "higher", args.count / elapsed, span, args.count)


def small_files(args):
    os.makedirs(args.dir)
    names = [os.path.join(args.dir, f"f{i:05d}") for i in range(args.files)]
    payload = os.urandom(1024)

    def timed(metric, unit, fn, ops):
        span = Span()
        start = time.perf_counter()
        fn()
        emit(metric, unit, "higher", ops / (time.perf_counter() - start), span, ops)

    def create():
        for name in names:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, payload)
            os.close(fd)

    def stat():
        for name in names:
            os.stat(name)

    def read():
        for name in names:
            fd = os.open(name, os.O_RDONLY)
            if os.read(fd, 4096) != payload:
                sys.exit(f"small_read: wrong contents in {name}")
            os.close(fd)

    def readdir():
        for _ in range(args.readdir_repeats):
            if len(os.listdir(args.dir)) != args.files:
                sys.exit("readdir: wrong entry count")

    def unlink():
        for name in names:
            os.unlink(name)

    timed("small_create", "files/s", create, args.files)
    timed("small_stat", "stats/s", stat, args.files)
    timed("small_read", "files/s", read, args.files)
    timed("readdir", "entries/s", readdir, args.files * args.readdir_repeats)
    timed("small_unlink", "files/s", unlink, args.files)
    os.rmdir(args.dir)


def timed_command(args):
    span = Span()
    start = time.perf_counter()
    subprocess.run(args.command, check=True)
    emit(args.metric, "s", "lower", time.perf_counter() - start, span)


def report(args):
    samples = [json.loads(line) for line in open(args.samples) if line.strip()]
    targets = [t for t in ("plain", "bindfs", "truckeefs") if any(s["target"] == t for s in samples)]
    metrics = []
    for s in samples:
        if (s["metric"], s["unit"], s["better"]) not in metrics:
            metrics.append((s["metric"], s["unit"], s["better"]))

    medians = {}
    for metric, _, _ in metrics:
        for target in targets:
            values = [s["value"] for s in samples if s["metric"] == metric and s["target"] == target]
            if values:
                medians.setdefault(metric, {})[target] = statistics.median(values)

    def fmt(value):
        return "-" if value is None else f"{value:,.3f}" if value < 10 else f"{value:,.0f}" if value >= 1000 else f"{value:,.1f}"

    def ratio(a, b):
        return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"

    rows = [("metric", "unit", "better", "plain", "bindfs", "truckeefs", "truckeefs/bindfs", "truckeefs/plain")]
    for metric, unit, better in metrics:
        m = medians.get(metric, {})
        rows.append((metric, unit, better, fmt(m.get("plain")), fmt(m.get("bindfs")), fmt(m.get("truckeefs")),
                     ratio(m.get("truckeefs"), m.get("bindfs")), ratio(m.get("truckeefs"), m.get("plain"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"Medians of {args.runs} run(s); ratios are value ratios (see 'better' for the direction).")
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[c]) if c < 3 else cell.rjust(widths[c]) for c, cell in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if args.rss_kib:
        print(f"truckeefs peak RSS (VmHWM, max over mounts): {int(args.rss_kib) / 1024:.1f} MiB")

    # CPU per unit of work: per MiB, read, file, stat or entry; per whole run for timed commands.
    cpu = {}
    for s in samples:
        for process, value in s.get("cpu_us_per_op", {}).items():
            cpu.setdefault((s["metric"], s["target"], process), []).append(value)
    cpu_medians = {f"{metric} {target} {process}": statistics.median(values)
                   for (metric, target, process), values in cpu.items()}
    if cpu:
        print("CPU time per unit of work (µs; per MiB, read, file, stat or entry; per run for untar and rm_rf), medians:")
        columns = sorted({(target, process) for _, target, process in cpu})
        header = ["metric"] + [f"{target}:{process}" for target, process in columns]
        lines = [header] + [[metric] + [fmt(cpu_medians.get(f"{metric} {target} {process}")) for target, process in columns]
                            for metric, _, _ in metrics]
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        for line in lines:
            print("  ".join(cell.ljust(widths[c]) if c == 0 else cell.rjust(widths[c]) for c, cell in enumerate(line)))

    result = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": args.runs,
        "settings": json.loads(args.settings),
        "host": {"kernel": os.uname().release, "cpus": os.cpu_count()},
        "units": {metric: {"unit": unit, "better": better} for metric, unit, better in metrics},
        "medians": medians,
        "truckeefs_peak_rss_kib": int(args.rss_kib) if args.rss_kib else None,
        "cpu_us_per_op_medians": cpu_medians,
        "samples": samples,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"Results: {args.out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(required=True)
    p = sub.add_parser("seq-write"); p.add_argument("file"); p.add_argument("source"); p.set_defaults(fn=seq_write)
    p = sub.add_parser("seq-read"); p.add_argument("file"); p.set_defaults(fn=seq_read)
    p = sub.add_parser("rand-read"); p.add_argument("file"); p.add_argument("--count", type=int, default=5000)
    p.add_argument("--seed", type=int, default=1); p.set_defaults(fn=rand_read)
    p = sub.add_parser("small-files"); p.add_argument("dir"); p.add_argument("--files", type=int, default=2000)
    p.add_argument("--readdir-repeats", type=int, default=20); p.set_defaults(fn=small_files)
    p = sub.add_parser("timed"); p.add_argument("metric"); p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(fn=timed_command)
    p = sub.add_parser("report"); p.add_argument("samples"); p.add_argument("--out", required=True)
    p.add_argument("--runs", type=int, required=True); p.add_argument("--rss-kib", default="")
    p.add_argument("--settings", default="{}"); p.set_defaults(fn=report)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
