"""Architecture rules that code review alone would not keep."""
import pathlib
import re
import subprocess
import sys

import numpy as np

import lob
import lob._core as core
import lob.enums as enums


def test_import_lob_loads_no_server_or_widget_stack():
    code = ("import sys, lob, lob.exchange, lob.book, lob.testing; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'bokeh', 'ipywidgets', "
            "'jupyter_bokeh', 'jupyter_server')); print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_enums_have_one_source():
    for name in ("Action", "Side", "OrderType", "TIF", "Status", "Reason", "STPMode", "ModifyPolicy"):
        assert getattr(enums, name) is getattr(core, name) is getattr(lob, name)
    assert lob.Side.BUY == 0 and lob.Side.SELL == 1


def test_dtypes_are_derived_from_the_structs_without_hidden_padding():
    for dt in (lob.EVENT_DTYPE, lob.REPORT_DTYPE, lob.FILL_DTYPE, lob.ORDER_DTYPE):
        assert dt.itemsize == sum(dt.fields[n][0].itemsize for n in dt.names)
        assert dt.itemsize % 8 == 0
    for field in ("ts_ns", "symbol", "order_id", "owner", "action", "side", "type", "tif", "price_ticks", "qty_lots"):
        assert field in lob.EVENT_DTYPE.names
    for field in ("ts_ns", "symbol", "price_ticks", "qty_lots", "aggressor", "maker_order_id", "taker_order_id",
                  "maker_owner", "taker_owner", "seq"):
        assert field in lob.FILL_DTYPE.names


# --- the dtypes and the enums against lob/_engine.pxd, read as text (an independent derivation) -----
PXD = (pathlib.Path(lob.__file__).parent / "_engine.pxd").read_text()
C_SIZES = {"int64_t": 8, "uint64_t": 8, "int32_t": 4, "uint32_t": 4, "uint16_t": 2, "uint8_t": 1}
C_KINDS = {"int64_t": "i8", "uint64_t": "u8", "int32_t": "i4", "uint32_t": "u4", "uint16_t": "u2", "uint8_t": "u1"}


def _struct(name):
    body = re.search(rf"^cdef struct {name}:.*?\n((?:    .*\n)+)", PXD, re.M).group(1)
    return [(m.group(2), m.group(1)) for m in re.finditer(r"^    (\w+)\s+(\w+)", body, re.M)]


def test_record_dtypes_match_the_pxd_structs_field_for_field():
    for struct, dt in (("Event", lob.EVENT_DTYPE), ("Report", lob.REPORT_DTYPE), ("Fill", lob.FILL_DTYPE),
                       ("OrderView", lob.ORDER_DTYPE)):
        fields = _struct(struct)
        assert list(dt.names) == [f for f, _ in fields], struct
        offset = 0
        for f, ctype in fields:
            size = C_SIZES[ctype]
            assert offset % size == 0, f"{struct}.{f} is not naturally aligned: hidden padding before it"
            assert dt.fields[f][1] == offset and dt.fields[f][0] == np.dtype(C_KINDS[ctype]), (struct, f)
            offset += size
        assert dt.itemsize == offset and offset % 8 == 0, struct
        declared = re.search(rf"^cdef struct {struct}:.*?\((\d+) bytes\)", PXD, re.M)
        assert declared and int(declared.group(1)) == offset, f"{struct}: the pxd comment states the size"


def test_enum_values_match_the_pxd():
    for name in ("Side", "Action", "OrderType", "TIF", "Status", "Reason", "STPMode", "ModifyPolicy"):
        body = re.search(rf"^cpdef enum {name}:\n((?:    .*\n)+)", PXD, re.M).group(1)
        declared = {m.group(1): int(m.group(2)) for m in re.finditer(r"^    (\w+) = (\d+)", body, re.M)}
        assert {m.name: int(m) for m in getattr(lob, name)} == declared, name
