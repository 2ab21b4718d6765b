#!/usr/bin/env python3
"""Where a block's time goes, per transaction, from `perf script` output.

Reads the output of `perf script -F comm,tid,ip,sym` of a `perf record --call-graph dwarf`
run of `tos-blockstm bench` (see scripts/profile-parts.sh, which runs both) and splits
the samples of each executor into parts: each sample goes to the first part, in the
order below, that any frame of its stack names (so the allocator under a memory write
counts as the write, and a memory read under TOS's rules as the read). With
the executors' median block times (`--seq-ms`, `--par-ms`, from the same bench run) and
the block's size, it prints nanoseconds per transaction for each part.
"""

import argparse
import re
import sys
from collections import Counter

# (part, pattern) in order: a sample is the first part any of its frames matches.
BLOCK_STM_PARTS = [
    ("storage: values and claims", r"tos_adapter::snapshot|get_claimed|BlockState"),
    ("memory: validation", r"validate_read_set"),
    (
        "memory: reads",
        r"MVMemory<.*>::read_located|KeyIndex<.*>::locate|read_with_base|read_chained"
        r"|read_walking|keep_base",
    ),
    (
        "memory: writes",
        r"record_inner|KeyIndex<.*>::write|write_existing|KeyVersions<.*>::write|restitch"
        r"|NodeCursor|drop_stale|KeyVersions<.*>::remove|mark_estimate",
    ),
    (
        "final pass: fold, outputs, gather",
        r"MVMemory<.*>::finish_txn|final_writes|final_value|Block<.*>::finish_txn|gather::"
        r"|add_credits",
    ),
    ("view: buffers, checks, effects", r"executor::view::|write_buffer::|LocatedReads"),
    ("scheduler", r"scheduler::"),
    ("TOS rules, adapter state calls", r"tos_adapter::rules|tos_adapter::execution::vm|TosVm"),
    ("engine loop, block setup", r"executor::|mvmemory::|tos_adapter::execution"),
]

SEQUENTIAL_PARTS = [
    ("storage: values", r"tos_adapter::snapshot|BlockState"),
    ("block state: pending and current maps", r"PendingState|hashbrown"),
    ("TOS rules", r"tos_adapter::rules"),
    ("executor loop, commit", r"tos_adapter::oracle|executor::"),
]


def samples(lines):
    stack = []
    for line in lines:
        if not line.strip():
            if stack:
                yield stack
            stack = []
        elif line[0] in " \t":
            parts = line.strip().split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else "?")
        else:
            stack = []
    if stack:
        yield stack


def classify(stack, parts):
    for name, pattern in parts:
        if any(pattern.search(frame) for frame in stack):
            return name
    return "other (kernel, libc)"


def table(title, counts, total_ms, txs):
    total = sum(counts.values())
    if total == 0:
        print(f"{title}: no samples")
        return
    ns_per_txn = total_ms * 1e6 / txs
    print(f"{title}: {ns_per_txn:.0f} ns per transaction ({total} samples)")
    print("| part | share | ns per transaction |")
    print("|---|---|---|")
    for name, n in counts.most_common():
        print(f"| {name} | {100 * n / total:.1f}% | {ns_per_txn * n / total:.0f} |")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", help="perf script output (- for standard input)")
    parser.add_argument("--seq-ms", type=float, required=True)
    parser.add_argument("--par-ms", type=float, required=True)
    parser.add_argument("--txs", type=int, required=True)
    args = parser.parse_args()
    source = sys.stdin if args.script == "-" else open(args.script, encoding="utf-8")
    block_stm = [(n, re.compile(p)) for n, p in BLOCK_STM_PARTS]
    sequential = [(n, re.compile(p)) for n, p in SEQUENTIAL_PARTS]
    par, seq = Counter(), Counter()
    for stack in samples(source):
        if any("execute_block_with" in f or "run_worker" in f for f in stack):
            par[classify(stack, block_stm)] += 1
        elif any("SequentialTosExecutor" in f for f in stack):
            seq[classify(stack, sequential)] += 1
    table("Sequential", seq, args.seq_ms, args.txs)
    table("Block-STM", par, args.par_ms, args.txs)


if __name__ == "__main__":
    main()
