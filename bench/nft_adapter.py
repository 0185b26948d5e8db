#!/usr/bin/env python3
"""Run `microprune trace` the way ../shared/tools/nft_suite.py calls a tracer.

The suite hands each case's @vercel/nft options as a JSON file ({opts}); the ones
microprune has a flag for are passed on (conditions, depth, paths as --alias); the others
(exportsOnly, mixedModules) have no microprune equivalent and are ignored.

    python3 ../shared/tools/nft_suite.py NFT/test/unit \\
        --cmd 'python3 bench/nft_adapter.py --opts {opts} -- microprune trace --format json --base {base} --cwd {cwd} {inputs}'
"""
from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--opts" or argv[2] != "--":
        print("usage: nft_adapter.py --opts FILE -- MICROPRUNE-TRACE-COMMAND...", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        opts = json.load(handle)
    command = argv[3:]
    for condition in opts.get("conditions", []):
        if condition != "node":
            command += ["--condition", condition]
    for name, target in sorted((opts.get("paths") or {}).items()):
        command += ["--alias", f"{name}={target}"]
    if isinstance(opts.get("depth"), int):
        command += ["--depth", str(opts["depth"])]
    os.execvp(command[0], command)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
