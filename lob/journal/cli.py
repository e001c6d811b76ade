"""``lob journal verify PATH`` and ``lob journal repair PATH [--truncate-corrupt]``."""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from lob.errors import JournalError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="lob journal", description="check or repair a lob journal directory")
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="check every record's framing and checksum")
    v.add_argument("path")
    r = sub.add_parser("repair", help="truncate a torn tail (and, if asked, everything from a corrupt record on)")
    r.add_argument("path")
    r.add_argument("--truncate-corrupt", action="store_true",
                   help="cut the journal at a corrupt record, losing every record after it")
    args = p.parse_args(argv)
    from lob.journal import repair, verify

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = verify(args.path) if args.cmd == "verify" else repair(args.path, args.truncate_corrupt)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except JournalError as e:
        print(f"lob journal {args.cmd}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1))
    if args.cmd == "verify" and out["torn_tail_at"] is not None:
        print(f"torn tail at offset {out['torn_tail_at']}: run 'lob journal repair {args.path}'", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
