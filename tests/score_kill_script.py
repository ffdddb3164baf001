"""Run `aesformer-hf score` and SIGKILL this process while it rates batch N+1 (after N batches were written).

Usage: python score_kill_script.py <rank to kill> <N> score ARGS...  (RANK comes from `accelerate launch`; 0 alone)
"""

import os
import signal
import sys

from aesformer_hf import scoring
from aesformer_hf.cli import main

kill_rank, batches = int(sys.argv[1]), int(sys.argv[2])
if int(os.environ.get("RANK", "0")) == kill_rank:
    original = scoring.Rater.rate
    calls = []

    def rate(self, records):
        calls.append(len(records))
        if len(calls) == batches + 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the batch in flight is lost, nothing else
        return original(self, records)

    scoring.Rater.rate = rate

sys.exit(main(sys.argv[3:]))
