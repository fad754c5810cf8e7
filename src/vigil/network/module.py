"""The network module's registration with core."""

from vigil.core.modules import Module
from vigil.network import cli, web
from vigil.network.api import devices_router, router
from vigil.network.jobs import JOBS, TRIGGERS

module = Module(
    name="network",
    title="Network (SOTP)",
    router=router,
    extra_routers=(devices_router,),
    web=web.pages,
    jobs=JOBS,
    triggers=TRIGGERS,
    cli=cli.build,
)
