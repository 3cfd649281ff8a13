"""The label check report of a built corpus: boxes per source, where they came from, face sizes."""

from __future__ import annotations

from collections import Counter, defaultdict

from facedet.apps.corpus.sources import SOURCES, picture_key

SIZES = ((0, 32), (32, 64), (64, 128), (128, 256), (256, 1 << 30))  # face box height in pixels


def _size(height: float) -> str:
    for low, high in SIZES:
        if low <= height < high:
            return f"<{high}" if low == 0 else (f">={low}" if high == 1 << 30 else f"{low}-{high - 1}")
    return "?"


def label_report(entries: list[dict], labels: dict, sources=SOURCES) -> str:
    """Markdown: per package the pictures, faces by origin, ignore regions, rejected teacher boxes,
    negatives, and the face heights (pixels, and as a share of the picture height)."""
    packages = [s.package for s in sources]
    sources = {s.package: s for s in sources}
    rows: dict[str, Counter] = defaultdict(Counter)
    sizes: dict[str, Counter] = defaultdict(Counter)
    relative: dict[str, list[float]] = defaultdict(list)
    for e in entries:
        source = sources.get(e["package"])
        key = picture_key(source, e["member"], e["frame"]) if source else None
        entry = labels.get("pictures", {}).get(key, {"faces": []})
        for group in (e["package"], "all"):
            row = rows[group]
            row["pictures"] += 1
            row["videos frames"] += e["frame"] is not None
            row["negatives"] += not entry["faces"]
            row["rejected"] += len(entry.get("rejected", []))
            for face in entry["faces"]:
                if face["ignore"]:
                    row["ignore"] += 1
                    continue
                row["faces"] += 1
                row[face["origin"]] += 1
                height = face["box"][3] - face["box"][1]
                sizes[group][_size(height)] += 1
                relative[group].append(height / e["height"])
    order = [p for p in packages if p in rows] + ["all"]
    lines = [
        (
            "| package | split | pictures (frames) | faces | teacher unchanged | corrected | added | ignore "
            "| rejected teacher boxes | negatives |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in order:
        r = rows[p]
        split = sources[p].split if p in sources else ""
        lines.append(
            f"| {p} | {split} | {r['pictures']} ({r['videos frames']}) | {r['faces']} | {r['teacher']} | "
            f"{r['corrected']} | {r['added']} | {r['ignore']} | {r['rejected']} | {r['negatives']} |"
        )
    labels_ = [_size(low) for low, _ in SIZES]
    lines += [
        "",
        "Face box heights (pixels; median share of the picture height):",
        "",
        "| package | " + " | ".join(labels_) + " | median share |",
        "|---|" + "---|" * (len(labels_) + 1),
    ]
    for p in order:
        shares = sorted(relative[p])
        median = f"{shares[len(shares) // 2]:.2f}" if shares else "-"
        lines.append(f"| {p} | " + " | ".join(str(sizes[p][s]) for s in labels_) + f" | {median} |")
    return "\n".join(lines) + "\n"
