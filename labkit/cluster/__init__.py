"""The cluster and its devices: the Lab, cluster launchers, array backends, GPUs, environment.

>>> from labkit.cluster import Lab
>>> Lab.__name__
'Lab'
"""

from __future__ import annotations

from .lab import Lab

__all__ = ["Lab"]
