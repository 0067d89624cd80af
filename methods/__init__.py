"""SR method adapters, one per file, registered by name in :data:`METHODS`.

Heavy imports (diffusers, spandrel, ...) live inside each adapter so that importing this
package stays cheap.
"""

from methods.base import METHODS, SRMethod
from methods import bicubic, ccsr, noise_control, precomputed  # noqa: F401  (registration)
from methods import dasr, diffusers_sr, external, gan  # noqa: F401  (registration; heavy imports happen inside the adapters)

__all__ = ["METHODS", "SRMethod"]
