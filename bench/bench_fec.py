"""Benchmark the FEC reader: time, lines/s and peak memory of reading one large FEC, streamed (``read_fec``) and,
for comparison, whole (the file's bytes decoded and split in memory, as the reader did before issue 9). Not a test.

    .venv/bin/python bench/bench_fec.py --lines 2000000             # about 400 MB of FEC, 1 line in 3 a 411 line
    .venv/bin/python bench/bench_fec.py --lines 2000000 --customer-share 0.05

Each mode runs in its own child process so its peak RSS (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_fec(path: Path, n_lines: int, customer_share: float, seed: int = 7) -> None:
    """An FEC in the 18 legal columns: sales entries (411 debit, 706 and 4457 credits) and bank receipts."""
    from relance.sources.fec.layout import FEC_COLUMNS

    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(FEC_COLUMNS) + "\r\n")
        for i in range(n_lines):
            day = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
            customer = rng.random() < customer_share
            account, aux = ("411000", f"C{rng.randint(1, 5000)}") if customer else ("706000", "")
            amount = f"{rng.randint(100, 999_999) / 100:.2f}".replace(".", ",")
            debit, credit = (amount, "0,00") if customer else ("0,00", amount)
            fields = ["VE", "Ventes", str(i // 3), day, account, "Clients", aux, f"Client {aux}", f"F{i // 3}", day,
                      f"Facture F{i // 3}", debit, credit, "", "", day, "", ""]  # fmt: skip
            fh.write("\t".join(fields) + "\r\n")


def run_mode(path: Path, mode: str) -> None:
    """Child process: read the file in one mode, print seconds, lines/s and peak RSS."""
    from relance.sources.fec import read_fec
    from relance.sources.fec.read import parse_fec

    t0 = time.perf_counter()
    if mode == "stream":
        extracts = read_fec(path)
        n_customer = sum(e.table.num_rows for e in extracts if e.entity == "invoices")
    else:
        parsed = parse_fec(path.read_bytes(), str(path), "411")
        n_customer = len(parsed.lines)
    seconds = time.perf_counter() - t0
    n_lines = sum(1 for _ in path.open("rb")) - 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{mode:>6}: {seconds:6.1f} s, {n_lines / seconds:,.0f} lines/s, peak RSS {peak:,.0f} MiB "
        f"({n_customer:,} customer rows/lines)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--customer-share", type=float, default=1 / 3)
    parser.add_argument("--mode", choices=["stream", "whole"], help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        run_mode(args.file, args.mode)
        return
    with tempfile.TemporaryDirectory(prefix="relance-bench-fec-") as tmp:
        path = Path(tmp) / "FEC.txt"
        t0 = time.perf_counter()
        write_fec(path, args.lines, args.customer_share)
        print(f"FEC of {args.lines:,} lines, {path.stat().st_size / 2**20:,.0f} MiB, written in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        for mode in ("whole", "stream"):
            subprocess.run([sys.executable, __file__, "--mode", mode, "--file", str(path)], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
