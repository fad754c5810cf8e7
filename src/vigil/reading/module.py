"""The reading module's registration with core (ChronoBook)."""

from vigil.core.modules import Module
from vigil.reading import cli, web
from vigil.reading.api import router

module = Module(
    name="reading", title="Reading (ChronoBook)", router=router, web=web.pages, cli=cli.build
)
