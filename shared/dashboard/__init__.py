"""The cost dashboard (``/dashboard``): a tenant's per-video costs as server-rendered HTML.

The HTTP side (sign-in, cookies, templates) is :mod:`shared.api.routes_dashboard`; this package holds
what it is built from: the signed session (:mod:`.session`), the filter and page models (:mod:`.pages`),
the daily chart's geometry (:mod:`.chart`) and the Jinja templates (``templates/``).
"""
