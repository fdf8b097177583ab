"""Structural schemas of the Prometheus Operator's PodMonitor and PrometheusRule (the
fields the monitoring component uses; monitoring.coreos.com/v1), in the style of
crd_schemas.py: unknown fields at the levels written by hand are refused."""

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string", "minLength": 1}
STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
DURATION: Schema = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
LABEL_NAME: Schema = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}
METADATA: Schema = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": STR_MAP, "annotations": STR_MAP},
    "additionalProperties": False,
}


def _object(kind: str, spec: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


RELABELING: Schema = {
    "type": "object",
    "properties": {
        "sourceLabels": {"type": "array", "items": STR},
        "targetLabel": LABEL_NAME,
        "regex": STR,
        "replacement": {"type": "string"},
        "action": {"enum": ["replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"]},
    },
    "additionalProperties": False,
}
POD_MONITOR = _object(
    "PodMonitor",
    {
        "type": "object",
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {
            "selector": {
                "type": "object",
                "properties": {"matchLabels": STR_MAP, "matchExpressions": {"type": "array"}},
                "additionalProperties": False,
            },
            "namespaceSelector": {"type": "object"},
            "podMetricsEndpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["port"],
                    "properties": {
                        "port": STR,
                        "path": {"type": "string", "pattern": "^/"},
                        "interval": DURATION,
                        "scrapeTimeout": DURATION,
                        "relabelings": {"type": "array", "items": RELABELING},
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
)
RULE: Schema = {
    "type": "object",
    "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {
        "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
        "record": STR,
        "expr": STR,
        "for": DURATION,
        "labels": STR_MAP,
        "annotations": STR_MAP,
    },
    "additionalProperties": False,
}
PROMETHEUS_RULE = _object(
    "PrometheusRule",
    {
        "type": "object",
        "required": ["groups"],
        "properties": {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "properties": {
                        "name": STR,
                        "interval": DURATION,
                        "rules": {"type": "array", "minItems": 1, "items": RULE},
                    },
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    },
)
MONITORING_SCHEMAS: dict[tuple[str, str], Schema] = {
    ("monitoring.coreos.com/v1", "PodMonitor"): POD_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}
