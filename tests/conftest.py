import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(__file__))

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*GPU available but not used.*")

import torch

# Tiny models: one thread is several times faster than two on a loaded 2-core machine.
torch.set_num_threads(1)
