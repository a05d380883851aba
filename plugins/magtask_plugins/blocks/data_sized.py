"""A torch module whose buffers are as large as its training data (a dictionary of training windows).

Such buffers start empty; a saved state holds them at the data's size, so loading resizes each one
named in `data_sized` to the saved tensor's shape before torch copies the values in.
"""

from __future__ import annotations

import torch
from torch import nn


class DataSizedModule(nn.Module):
    data_sized: tuple[str, ...] = ()  # buffer names whose size is the training data's

    def _load_from_state_dict(self, state, prefix, *args, **kwargs):
        for name in self.data_sized:
            if prefix + name in state:
                setattr(self, name, torch.empty_like(state[prefix + name]))
        super()._load_from_state_dict(state, prefix, *args, **kwargs)
