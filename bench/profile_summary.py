"""Summarise py-spy collapsed stacks (`bench.agent_overhead --profile DIR`): the functions whose
frames hold the most samples (inclusive) and the most self time, per file or for all files.

Run: `.venv/bin/python -m bench.profile_summary DIR/*.txt [--top 40] [--match goalflow]`.
"""

import argparse
from collections import Counter
from pathlib import Path


def load(paths: list[Path]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        for line in path.read_text().splitlines():
            frames, _, count = line.rpartition(" ")
            if frames and count.isdigit():
                stacks.append((frames.split(";"), int(count)))
    return stacks


def summarise(stacks: list[tuple[list[str], int]], top: int, match: str | None) -> str:
    total = sum(count for _, count in stacks)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for frames, count in stacks:
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples"]
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"\n-- {title} --")
        shown = 0
        for frame, count in counter.most_common():
            if match and match not in frame:
                continue
            lines.append(f"{100 * count / total:5.1f}%  {frame}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", help="only frames containing this text")
    args = parser.parse_args()
    print(summarise(load(args.paths), args.top, args.match))


if __name__ == "__main__":
    main()
