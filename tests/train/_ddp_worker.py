"""Worker for the DDP test: ``python -m torch.distributed.run ... _ddp_worker.py CONFIG.json OUT``."""

import json
import sys

from stripes.config import RunConfig
from stripes.train import train

if __name__ == "__main__":
    cfg = RunConfig.from_dict(json.loads(open(sys.argv[1]).read()))
    train(cfg, sys.argv[2], progress=False)
