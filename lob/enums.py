"""The engine's enums (defined once, as ``cpdef enum`` in ``lob/_engine.pxd``) and their string names."""
from lob._core import Action, ModifyPolicy, OrderType, Reason, Side, Status, STPMode, TIF

__all__ = ["Action", "ModifyPolicy", "OrderType", "Reason", "Side", "Status", "STPMode", "TIF",
           "STP_NAMES", "MODIFY_POLICY_NAMES", "name_of", "names"]

#: user-facing names of the self-trade-prevention modes
STP_NAMES = {m.name.removeprefix("STP_").lower(): int(m) for m in STPMode}
#: user-facing names of the modify priority policies
MODIFY_POLICY_NAMES = {m.name.removeprefix("PRIORITY_").lower(): int(m) for m in ModifyPolicy}


def name_of(enum_cls, code: int) -> str:
    """Lower-case name of an enum code (``name_of(Reason, 8) == 'no_liquidity'``)."""
    return enum_cls(code).name.lower()


def names(enum_cls) -> tuple[str, ...]:
    """Lower-case names of an enum's codes 0, 1, ... in order (``names(Side) == ('buy', 'sell')``): index it
    with an array of codes to name a column."""
    out = tuple(m.name.lower() for m in sorted(enum_cls, key=int))
    assert [int(m) for m in sorted(enum_cls, key=int)] == list(range(len(out))), enum_cls
    return out
