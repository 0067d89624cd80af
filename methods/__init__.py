"""SR method adapters, one per file. Their names are the files of ``conf/method/`` (:data:`METHODS`
resolves a name to its YAML's ``_target_``), so a new method is its module and its YAML.

Heavy imports (diffusers, spandrel, ...) live inside each adapter so that importing this
package stays cheap.
"""

from methods.base import METHODS, SampleSource, SRMethod

__all__ = ["METHODS", "SampleSource", "SRMethod"]
