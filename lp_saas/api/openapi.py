"""The OpenAPI 3 document, built from the API views' docstrings and their marshmallow schemas."""
from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_yaml_from_docstring
import re

from flask import current_app

from lp_saas.api import bp


_PARAM = re.compile(r"<(?:[^:<>]+:)?(\w+)>")


def build_spec(app) -> dict:
    spec = APISpec(
        title="lp-saas API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_resolver)],
        info={"description": "學生學習歷程檔案 school platform. Call it on a school's host "
                             "`<slug>.<LP_BASE_DOMAIN>`; errors are `{\"error\": {\"code\", \"message\"}}` "
                             "with the message in the Accept-Language (zh-TW default, en)."},
        servers=[{"url": "/api/v1"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.options["security"] = [{"bearer": []}]
    from lp_saas.api import common

    for name, cls in sorted(_component_names(common.InputSchema).items()):
        spec.components.schema(name, schema=cls)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith("api."):
            continue
        view = app.view_functions[rule.endpoint]
        operations = load_yaml_from_docstring(view.__doc__ or "") or {}
        operations = {m: op for m, op in operations.items() if m.upper() in rule.methods}
        path = _PARAM.sub(r"{\1}", rule.rule[len("/api/v1"):]) or "/"
        for op in operations.values():
            if rule.arguments:
                op.setdefault("parameters", [
                    {"name": arg, "in": "path", "required": True, "schema": {"type": "string"}}
                    for arg in sorted(rule.arguments)])
            op.setdefault("operationId", rule.endpoint.replace(".", "_") + "_" + "_".join(sorted(rule.methods - {"HEAD", "OPTIONS"})).lower())
        if operations:
            spec.path(path=path, operations=operations)
    doc = spec.to_dict()
    doc["security"] = [{"bearer": []}]
    return doc


def _qualified(cls) -> str:
    area = cls.__module__.rsplit(".", 1)[-1].title().replace("_", "")
    return f"{area}{cls.__name__}"


def _component_names(base) -> dict:
    """Schema classes by component name: the class name, or module + class name when two modules
    use the same class name."""
    classes = list(dict.fromkeys(_subclasses(base)))
    counts: dict = {}
    for cls in classes:
        counts[cls.__name__] = counts.get(cls.__name__, 0) + 1
    return {(cls.__name__ if counts[cls.__name__] == 1 else _qualified(cls)): cls for cls in classes}


def _resolver(schema) -> str:
    """Names for nested schemas apispec registers on its own (unique per module)."""
    cls = schema if isinstance(schema, type) else type(schema)
    return _qualified(cls)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@bp.route("/openapi.json")
def openapi():
    """The OpenAPI document (this one is not listed in itself)."""
    ext = current_app.extensions
    if "lp_openapi" not in ext:
        ext["lp_openapi"] = build_spec(current_app)
    return ext["lp_openapi"]
