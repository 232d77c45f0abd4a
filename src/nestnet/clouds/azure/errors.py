"""Azure's own error (also found as ``nestnet.errors.AzureError``, its address before the seam)."""

from __future__ import annotations

from ...errors import OperationError


class AzureError(OperationError):
    """An Azure (ARM) call failed."""
