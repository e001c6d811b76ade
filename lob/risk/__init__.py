"""Pre-trade risk checks, post-trade limits and a kill switch (DESIGN §8).

:class:`RiskManager` sits in an exchange's order path (``RiskManager(...).attach(exchange)``) and answers each
new order with ``lob.Reason.NONE`` or a ``risk_*`` reason; :class:`RiskLimits` holds the limits in integer
units; :class:`Ledger` is the exact integer position/PnL accounting both use.
"""
from lob.risk.ledger import MICRO, Account, FeeSchedule, Ledger, fee_rate
from lob.risk.limits import RiskLimits
from lob.risk.manager import RiskManager

__all__ = ["RiskManager", "RiskLimits", "Ledger", "Account", "FeeSchedule", "fee_rate", "MICRO"]
