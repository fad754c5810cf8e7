"""The markets module's registration with core."""

from vigil.core.modules import Module
from vigil.markets import cli, configured_sources, web
from vigil.markets.api import router
from vigil.markets.jobs import CACHE_RULES, JOBS, TRIGGERS

module = Module(
    name="markets",
    title="Markets (Charon)",
    router=router,
    web=web.pages,
    jobs=JOBS,
    triggers=TRIGGERS,
    cache_rules=CACHE_RULES,
    cli=cli.build,
    schedule_overrides=configured_sources.schedule_overrides,
)
