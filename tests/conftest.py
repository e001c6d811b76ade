import os

from hypothesis import HealthCheck, settings

# ci: bounded, the default (and what CI=true gets); long: thousands of examples, opt in with
# HYPOTHESIS_PROFILE=long pytest tests/test_book_state_machine.py
# ci is derandomized (the same examples every run, no example database): a run passes or fails the same way
# every time, on any machine; long explores new examples on each run
settings.register_profile("ci", max_examples=150, stateful_step_count=40, deadline=None, derandomize=True,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=1000, stateful_step_count=120, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
