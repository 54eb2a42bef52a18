"""Golden journals of whole runs, replayed by the shipped replay in the tests
(``tests/shell/test_golden_histories.py``); ``python -m tests.histories.record`` makes them."""
