"""The verification harness: a stock run and its converted twin trained side by side (:mod:`equivalence.verify.lockstep`), judged against a rounding-error model (:mod:`equivalence.verify.noise_floor`), on the small test networks of :mod:`equivalence.verify.testing_nets`.

The modules are imported on their own (``from equivalence.verify import lockstep``); this
package imports nothing itself.
"""
