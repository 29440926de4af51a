#!/usr/bin/env python3
"""Stand-in for the host's slow windows (BENCHMARKS.md, "Closes together"): a process busy for
DUTY of every 10 ms, until killed. Two of them beside a run take about 1.2 of the 2 cores
whenever they are runnable, so both builds of an interleaved comparison run on a slower machine
alike.

    python3 bench/slow_host.py 0.6 & python3 bench/slow_host.py 0.6 &
    bench/pg-ab.sh 500 20 main=... new=... new=... main=...
    kill %1 %2
"""
import sys
import time

duty = float(sys.argv[1]) if len(sys.argv) > 1 else 0.6
period = 0.01
while True:
    start = time.perf_counter()
    while time.perf_counter() - start < period * duty:
        pass
    time.sleep(period * (1 - duty))
