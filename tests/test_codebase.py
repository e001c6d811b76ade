"""Architecture rules that code review alone would not keep."""
import subprocess
import sys

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
