"""The code's shape: files, lines and functions of the packages, and the longest functions.

    python -m benchmarks.code_shape [--top 10]

Counts the source packages (not tests or benchmarks); a function's length is its lines from
`def` to its last line, docstring included. Issue 15 reported these before and after.
"""

from __future__ import annotations

import argparse
import ast
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("model", "core", "api", "worker", "cli")


def function_lengths(path: Path) -> list[tuple[int, str]]:
    """(lines, 'file:line name') of every function and method in one file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            found.append((length, f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="longest functions shown")
    args = parser.parse_args()
    files = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    functions = [f for path in files for f in function_lengths(path)]
    lengths = [length for length, _ in functions]
    lines = sum(len(path.read_text().splitlines()) for path in files)
    print(
        f"files {len(files)}, lines {lines}, functions {len(functions)}, "
        f"median {statistics.median(lengths):g} lines, over 30 lines {sum(n > 30 for n in lengths)}"
    )
    for length, name in sorted(functions, reverse=True)[: args.top]:
        print(f"{length:5d}  {name}")


if __name__ == "__main__":
    main()
