"""The server-rendered web UI shell (Jinja2 + HTMX): layout, navigation, flash messages,
error pages, light/dark theme and local static files. Modules add their pages through
:class:`WebPages` on their registration object; core knows no module."""

from vigil.core.web.pages import HomeCard, NavLink, WebPages
from vigil.core.web.rendering import flash, is_htmx, render

__all__ = ["HomeCard", "NavLink", "WebPages", "flash", "is_htmx", "render"]
