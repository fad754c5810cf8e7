"""The reading module's registration with core (ChronoBook)."""

import vigil.reading.models  # noqa: F401  (the tables, for migrations)
from vigil.core.modules import Module

module = Module(name="reading", title="Reading (ChronoBook)")
