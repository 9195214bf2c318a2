#!/usr/bin/env python3
"""Summarizes an Autobahn fuzzingclient run of tern's echo endpoint.

Reads REPORTS/index.json (agent -> case id -> {behavior, behaviorClose, ...}),
prints a table of counts by behavior per section, lists every case whose
behavior is not accepted (with its report's expected/actual text), writes the
table as Markdown to --markdown, and exits 1 unless every required section
(1-7, 9, 10) has results and each of their cases is OK, NON-STRICT or
INFORMATIONAL.
"""

import argparse
import json
import os
import sys

ACCEPTED = ("OK", "NON-STRICT", "INFORMATIONAL")
BEHAVIORS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "WRONG CODE", "FAILED")
REQUIRED_SECTIONS = {1, 2, 3, 4, 5, 6, 7, 9, 10}


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reports", help="the fuzzingclient's outdir")
    parser.add_argument("--agent", default="tern")
    parser.add_argument("--markdown", help="write the summary table here")
    args = parser.parse_args()

    with open(os.path.join(args.reports, "index.json")) as f:
        index = json.load(f)
    cases = index.get(args.agent)
    if not cases:
        print("autobahn: no results for agent %r in %s" % (args.agent, args.reports))
        return 1

    sections = {}
    for case_id, result in cases.items():
        section = case_key(case_id)[0]
        counts = sections.setdefault(section, {})
        behavior = result.get("behavior", "?")
        counts[behavior] = counts.get(behavior, 0) + 1
    columns = list(BEHAVIORS) + sorted(
        {b for c in sections.values() for b in c} - set(BEHAVIORS)
    )

    header = ["section", "cases"] + columns
    rows = []
    for section in sorted(sections):
        counts = sections[section]
        rows.append(
            [str(section), str(sum(counts.values()))]
            + [str(counts.get(b, 0)) for b in columns]
        )
    totals = [sum(int(r[i]) for r in rows) for i in range(1, len(header))]
    rows.append(["all", *map(str, totals)])

    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    print(line(header))
    for row in rows:
        print(line(row))

    bad = []
    for case_id in sorted(cases, key=case_key):
        result = cases[case_id]
        behavior = result.get("behavior", "?")
        if case_key(case_id)[0] in REQUIRED_SECTIONS and behavior not in ACCEPTED:
            bad.append((case_id, result))
    for case_id, result in bad:
        detail = ""
        report = result.get("reportfile")
        if report:
            try:
                with open(os.path.join(args.reports, report)) as f:
                    case = json.load(f)
                detail = "\n    description: %s\n    expectation: %s\n    result: %s\n    close: %s" % (
                    case.get("description", ""),
                    case.get("expectation", ""),
                    case.get("result", ""),
                    case.get("resultClose", ""),
                )
            except (OSError, ValueError):
                pass
        print(
            "NOT ACCEPTED %s: behavior %s, close %s%s"
            % (case_id, result.get("behavior"), result.get("behaviorClose"), detail)
        )

    if args.markdown:
        md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        with open(args.markdown, "w") as f:
            f.write("\n".join(md) + "\n")

    # A run that silently left a required section out (a wrong spec, a
    # client that stopped early) must not pass for having nothing to judge.
    missing = sorted(REQUIRED_SECTIONS - set(sections))
    if missing:
        print("autobahn: no results for section(s) %s" % ", ".join(map(str, missing)))
        return 1
    if bad:
        print("autobahn: %d case(s) in sections 1-7, 9, 10 not OK/NON-STRICT/INFORMATIONAL" % len(bad))
        return 1
    print("autobahn: all %d cases of sections 1-7, 9, 10 accepted" % sum(
        1 for c in cases if case_key(c)[0] in REQUIRED_SECTIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
