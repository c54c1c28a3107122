"""Start-up cost of an import: the median wall time of a command that imports the package minus that of the
bare interpreter, run alternately RUNS times each (so both see the same machine load). Prints
"<median added ms> <median bare ms> <median with ms>". A figure, never asserted (speed lives in benchmarks).

    python3 startup.py RUNS BARE_CMD... -- WITH_CMD...
"""

import statistics
import subprocess
import sys
import time


def wall(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


runs = int(sys.argv[1])
split = sys.argv.index("--")
bare, with_ = sys.argv[2:split], sys.argv[split + 1 :]
wall(bare), wall(with_)  # warm the page cache
pairs = [(wall(bare), wall(with_)) for _ in range(runs)]
b = statistics.median(p[0] for p in pairs)
w = statistics.median(p[1] for p in pairs)
print(f"{statistics.median(p[1] - p[0] for p in pairs):.1f} {b:.1f} {w:.1f}")
