"""PyTorch models watched by reluscope: ``scan`` any module, and a ``DeadUnitMonitor``
for your own training loop.

Imported only by ``import reluscope.torch``; ``import reluscope`` never imports torch.
"""

from .monitor import DeadUnitMonitor
from .scan import scan

__all__ = ["DeadUnitMonitor", "scan"]
