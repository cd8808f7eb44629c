#!/usr/bin/env python3
"""Time from a change on one mount to its visibility on another mount of the same filesystem.

    visibility.py MOUNT_A MOUNT_B [--trials N]

close: A rewrites a file (a new size each trial) and closes it; the clock starts when close
returns, and stops when stat on B reports the new size (B had the old attributes cached).
create: A creates a file; the clock stops when B's listing of the directory (cached by B's
kernel) shows it. Prints one JSON line per measure with the median, p90, p99 and max in ms.
"""
import argparse, json, os, statistics, time

def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

def wait_until(condition, timeout=120.0):
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise SystemExit("not visible after %s s" % timeout)

def close_to_stat(a, b, trials):
    name = "visibility-close"
    with open(os.path.join(a, name), "wb") as f:
        f.write(b"x")
    wait_until(lambda: os.path.exists(os.path.join(b, name)))
    samples = []
    for trial in range(trials):
        size = 2 + trial
        os.stat(os.path.join(b, name))  # B's kernel caches the current attributes
        with open(os.path.join(a, name), "wb") as f:
            f.write(b"y" * size)
        start = time.perf_counter()
        wait_until(lambda: os.stat(os.path.join(b, name)).st_size == size)
        samples.append((time.perf_counter() - start) * 1000)
    return samples

def create_to_listing(a, b, trials):
    directory = "visibility-dir"
    os.mkdir(os.path.join(a, directory))
    wait_until(lambda: os.path.isdir(os.path.join(b, directory)))
    samples = []
    for trial in range(trials):
        os.listdir(os.path.join(b, directory))  # B's kernel caches the listing
        name = "f%d" % trial
        open(os.path.join(a, directory, name), "wb").close()
        start = time.perf_counter()
        wait_until(lambda: name in os.listdir(os.path.join(b, directory)))
        samples.append((time.perf_counter() - start) * 1000)
    return samples

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a"); parser.add_argument("b"); parser.add_argument("--trials", type=int, default=500)
    args = parser.parse_args()
    for measure, fn in (("close_to_stat_ms", close_to_stat), ("create_to_listing_ms", create_to_listing)):
        samples = fn(args.a, args.b, args.trials)
        print(json.dumps({"metric": measure, "trials": len(samples), "median": round(statistics.median(samples), 3),
                          "p90": round(percentile(samples, 90), 3), "p99": round(percentile(samples, 99), 3),
                          "max": round(max(samples), 3)}))

if __name__ == "__main__":
    main()
