"""Write lob/data/crypto/binance/BINANCE.0.trimmed: cryptofeed's BINANCE.0 with only the recorded symbols.

BINANCE.0 is the recorded ``GET /api/v3/exchangeInfo`` response (1.8 MB, every Binance symbol). The trimmed
file keeps the same two-line cryptofeed format (the HTTP line with its URL and receive time, then the
``configuration:`` line unchanged) and, in the response, every top-level field unchanged and only the entries
of ``symbols`` named below, each re-serialised compactly in the original key order. The script checks that
the text of each kept entry and of the rest of the response occurs byte for byte in the original.

Usage: python scripts/trim_binance_exchange_info.py [path/to/BINANCE.0]
(default: ../shared/data/cryptofeed_sample_data/binance/BINANCE.0 next to the repository)
"""
import hashlib
import json
import sys
from pathlib import Path

SYMBOLS = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"]
ROOT = Path(__file__).resolve().parent.parent


def _compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def main(src: Path) -> None:
    raw = src.read_bytes()
    text = raw.decode("utf-8")
    http_line, config_line = text.split("\n", 1)
    head, body = http_line.split(": ", 1)
    info = json.loads(body)
    kept = [s for s in info["symbols"] if s["symbol"] in SYMBOLS]
    if sorted(s["symbol"] for s in kept) != sorted(SYMBOLS):
        sys.exit(f"{src}: symbols missing: {sorted(set(SYMBOLS) - {s['symbol'] for s in kept})}")
    for s in kept:
        if _compact(s) not in body:
            sys.exit(f"{src}: entry of {s['symbol']} does not re-serialise to its original text")
    rest = {k: v for k, v in info.items() if k != "symbols"}
    if _compact(rest)[:-1] not in body:
        sys.exit(f"{src}: top-level fields do not re-serialise to their original text")
    trimmed = dict(info, symbols=kept)
    out = ROOT / "lob" / "data" / "crypto" / "binance" / "BINANCE.0.trimmed"
    out.write_text(f"{head}: {_compact(trimmed)}\n{config_line}", encoding="utf-8")
    print(f"original {src} {len(raw)} B sha256 {hashlib.sha256(raw).hexdigest()}")
    data = out.read_bytes()
    print(f"trimmed  {out.relative_to(ROOT)} {len(data)} B sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         ROOT.parent / "shared" / "data" / "cryptofeed_sample_data" / "binance" / "BINANCE.0")
