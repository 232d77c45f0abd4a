"""nestnet: routable network addresses for nested VMs on KVM hosts that are cloud VMs.

The pure core (``spec``, ``validate``, ``ipam``, ``plan``, ``guest``) has no I/O beyond reading
the spec and its lock; the edges (host, the clouds, lab, check, fleet, doctor) consume the ``Plan``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
