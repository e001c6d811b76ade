"""Queue position: shadow orders in the real L3 FIFO, level-2 queue models, survival scoring.

* :mod:`lob.queue.l3`: the resolved order-level stream of a LOBSTER day (the verified rebuild);
* :mod:`lob.queue.shadow`: shadow orders tracked to fill or censoring in one compiled pass;
* :mod:`lob.queue.models`: level-2 queue models (the protocol ``Backtest(queue_model=...)`` takes);
* :mod:`lob.queue._compiled`: their compiled forms and the ``cdef`` bases for one's own (``.pxd``), which the
  backtest step loop calls without the GIL;
* :mod:`lob.queue.hazard`: a Cox fill-time model on level-2 features;
* :mod:`lob.queue.scoring`: concordance, integrated Brier score, calibration at 1 s / 10 s / 60 s.

See ``docs/queue_models.md`` and ``notebooks/12_queue_position.ipynb``. Scoring and the fitted models need the
``queue`` extra (lifelines, scikit-survival, scikit-learn), imported only when used.
"""
from lob.queue.l3 import L3_DTYPE, goog_l3, l3_stream
from lob.queue.models import (FittedProbQueueModel, LogProbQueueFunc, LogProbQueueFunc2, PowerProbQueueFunc,
                              PowerProbQueueFunc2, PowerProbQueueFunc3, ProbQueueModel, QueueModel, QueueState,
                              RiskAverseQueueModel, predict_fills, standard_models)
from lob.queue.shadow import ShadowResult, random_shadows, track_shadows
from lob.queue._compiled import CompiledProbQueueModel, CompiledQueueModel

__all__ = ["L3_DTYPE", "goog_l3", "l3_stream", "ShadowResult", "track_shadows", "random_shadows", "QueueModel",
           "QueueState", "RiskAverseQueueModel", "ProbQueueModel", "PowerProbQueueFunc", "PowerProbQueueFunc2",
           "PowerProbQueueFunc3", "LogProbQueueFunc", "LogProbQueueFunc2", "FittedProbQueueModel",
           "predict_fills", "standard_models", "CompiledQueueModel", "CompiledProbQueueModel"]
