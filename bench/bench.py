#!/usr/bin/env python3
"""Timed workloads and the report for bench/run.sh (standard library only).

Each workload subcommand runs once against one directory and prints JSON lines
{"metric", "unit", "better", "value"} on stdout; run.sh tags them with target and run and
collects them. `report` turns the collected samples into medians, a table and a JSON file.
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


def emit(metric, unit, better, value):
    print(json.dumps({"metric": metric, "unit": unit, "better": better, "value": value}), flush=True)


def seq_write(args):
    # The data is read into memory before the clock starts, so only the target's write path is
    # timed; it is random, so no target can compress or deduplicate it.
    with open(args.source, "rb") as f:
        data = memoryview(f.read())
    start = time.perf_counter()
    fd = os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for offset in range(0, len(data), CHUNK):
        os.write(fd, data[offset:offset + CHUNK])
    # Every target pays for durability the same way: one fsync before the clock stops.
    os.fsync(fd)
    os.close(fd)
    elapsed = time.perf_counter() - start
    emit("seq_write", "MiB/s", "higher", len(data) / CHUNK / elapsed)


def seq_read(args):
    buffer = bytearray(CHUNK)
    total = 0
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
    emit("seq_read", "MiB/s", "higher", total / CHUNK / elapsed)


def rand_read(args):
    size = os.path.getsize(args.file)
    rng = random.Random(args.seed)
    offsets = [rng.randrange(0, size // 4096) * 4096 for _ in range(args.count)]
    fd = os.open(args.file, os.O_RDONLY)
    start = time.perf_counter()
    for offset in offsets:
        if len(os.pread(fd, 4096, offset)) != 4096:
            sys.exit(f"rand_read: short read at {offset}")
    elapsed = time.perf_counter() - start
    os.close(fd)
    emit("rand_read_4k", "reads/s", "higher", args.count / elapsed)


def small_files(args):
    os.makedirs(args.dir)
    names = [os.path.join(args.dir, f"f{i:05d}") for i in range(args.files)]
    payload = os.urandom(1024)

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

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

    emit("small_create", "files/s", "higher", args.files / timed(create))
    emit("small_stat", "stats/s", "higher", args.files / timed(stat))
    emit("small_read", "files/s", "higher", args.files / timed(read))
    emit("readdir", "entries/s", "higher", args.files * args.readdir_repeats / timed(readdir))
    emit("small_unlink", "files/s", "higher", args.files / timed(unlink))
    os.rmdir(args.dir)


def timed_command(args):
    start = time.perf_counter()
    subprocess.run(args.command, check=True)
    emit(args.metric, "s", "lower", time.perf_counter() - start)


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

    result = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runs": args.runs,
        "settings": json.loads(args.settings),
        "host": {"kernel": os.uname().release, "cpus": os.cpu_count()},
        "units": {metric: {"unit": unit, "better": better} for metric, unit, better in metrics},
        "medians": medians,
        "truckeefs_peak_rss_kib": int(args.rss_kib) if args.rss_kib else None,
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
