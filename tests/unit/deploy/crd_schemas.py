"""Structural schemas for the custom resources photosearch renders, which
kubernetes-validate has no schema for. They cover the fields used here and refuse unknown
ones at the levels written by hand, so a typo or a number where the operator wants a
string fails the build instead of the apply."""

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string", "minLength": 1}
STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
DURATION: Schema = {"type": "string", "pattern": r"^[0-9]+(h|m|s)$"}
METADATA: Schema = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": STR, "namespace": STR, "labels": STR_MAP, "annotations": STR_MAP},
    "additionalProperties": False,
}
QUANTITY_MAP: Schema = {"type": "object", "additionalProperties": {"type": ["string", "integer"]}}
RESOURCES: Schema = {
    "type": "object",
    "properties": {"requests": QUANTITY_MAP, "limits": QUANTITY_MAP},
    "additionalProperties": False,
}


def _object(api_version: str, kind: str, spec: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
        "additionalProperties": False,
    }


SCALED_OBJECT = _object(
    "keda.sh/v1alpha1",
    "ScaledObject",
    {
        "type": "object",
        "required": ["scaleTargetRef", "triggers"],
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"apiVersion": STR, "kind": STR, "name": STR},
                "additionalProperties": False,
            },
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": {"type": "object"},
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["type", "metadata"],
                    "properties": {
                        "type": {"enum": ["nats-jetstream", "cpu", "memory"]},
                        "metricType": {"enum": ["Utilization", "AverageValue", "Value"]},
                        # KEDA reads every trigger setting as a string.
                        "metadata": STR_MAP,
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
)

CNPG_CLUSTER = _object(
    "postgresql.cnpg.io/v1",
    "Cluster",
    {
        "type": "object",
        "required": ["instances", "imageName", "storage", "bootstrap"],
        "properties": {
            "instances": {"type": "integer", "minimum": 1},
            # The operator reads the major version from the tag.
            "imageName": {"type": "string", "pattern": r":[0-9]+(\.[0-9]+)?-"},
            "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
            "enablePDB": {"type": "boolean"},
            "inheritedMetadata": {
                "type": "object",
                "properties": {"labels": STR_MAP, "annotations": STR_MAP},
                "additionalProperties": False,
            },
            "bootstrap": {
                "type": "object",
                "required": ["initdb"],
                "properties": {
                    "initdb": {
                        "type": "object",
                        "required": ["database", "owner"],
                        "properties": {
                            "database": STR,
                            "owner": STR,
                            "postInitApplicationSQL": {"type": "array", "items": STR},
                        },
                        "additionalProperties": False,
                    }
                },
                "additionalProperties": False,
            },
            "postgresql": {
                "type": "object",
                # Postgres parameters must be strings for the operator.
                "properties": {"parameters": STR_MAP},
                "additionalProperties": False,
            },
            "storage": {
                "type": "object",
                "required": ["size"],
                "properties": {"size": STR, "storageClass": STR},
                "additionalProperties": False,
            },
            "resources": RESOURCES,
            "affinity": {
                "type": "object",
                "properties": {"enablePodAntiAffinity": {"type": "boolean"}, "topologyKey": STR},
                "additionalProperties": False,
            },
            "plugins": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": STR,
                        "isWALArchiver": {"type": "boolean"},
                        "parameters": STR_MAP,
                    },
                    "additionalProperties": False,
                },
            },
        },
        "additionalProperties": False,
    },
)
SECRET_KEY_REF: Schema = {
    "type": "object",
    "required": ["name", "key"],
    "properties": {"name": STR, "key": STR},
    "additionalProperties": False,
}
COMPRESSION: Schema = {
    "type": "object",
    "properties": {"compression": {"enum": ["gzip", "bzip2", "snappy", "lz4", "xz", "zstd"]}},
    "additionalProperties": False,
}
BARMAN_OBJECT_STORE = _object(
    "barmancloud.cnpg.io/v1",
    "ObjectStore",
    {
        "type": "object",
        "required": ["configuration"],
        "properties": {
            # Days, weeks or months, as the plugin wants them.
            "retentionPolicy": {"type": "string", "pattern": r"^[1-9][0-9]*[dwm]$"},
            "configuration": {
                "type": "object",
                "required": ["destinationPath"],
                "properties": {
                    "destinationPath": {"type": "string", "pattern": r"^(s3|gs|https?)://"},
                    "endpointURL": {"type": "string", "pattern": r"^https?://"},
                    "s3Credentials": {
                        "type": "object",
                        "properties": {
                            "accessKeyId": SECRET_KEY_REF,
                            "secretAccessKey": SECRET_KEY_REF,
                            "inheritFromIAMRole": {"type": "boolean"},
                        },
                        "additionalProperties": False,
                    },
                    "wal": COMPRESSION,
                    "data": COMPRESSION,
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
)
SCHEDULED_BACKUP = _object(
    "postgresql.cnpg.io/v1",
    "ScheduledBackup",
    {
        "type": "object",
        "required": ["schedule", "cluster"],
        "properties": {
            # CloudNativePG's cron has six fields, seconds first.
            "schedule": {"type": "string", "pattern": r"^\S+( \S+){5}$"},
            "immediate": {"type": "boolean"},
            "backupOwnerReference": {"enum": ["none", "self", "cluster"]},
            "cluster": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": STR},
                "additionalProperties": False,
            },
            "method": {"enum": ["barmanObjectStore", "volumeSnapshot", "plugin"]},
            "pluginConfiguration": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": STR, "parameters": STR_MAP},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
)

CERTIFICATE = _object(
    "cert-manager.io/v1",
    "Certificate",
    {
        "type": "object",
        "required": ["secretName", "issuerRef"],
        "properties": {
            "secretName": STR,
            "commonName": STR,
            "isCA": {"type": "boolean"},
            "dnsNames": {"type": "array", "items": STR, "minItems": 1},
            "usages": {
                "type": "array",
                "items": {
                    "enum": ["server auth", "client auth", "digital signature", "key encipherment"]
                },
            },
            "duration": DURATION,
            "renewBefore": DURATION,
            "privateKey": {
                "type": "object",
                "properties": {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                    "size": {"type": "integer"},
                    "rotationPolicy": {"enum": ["Never", "Always"]},
                },
                "additionalProperties": False,
            },
            "issuerRef": {
                "type": "object",
                "required": ["name", "kind"],
                "properties": {
                    "name": STR,
                    "kind": {"enum": ["Issuer", "ClusterIssuer"]},
                    "group": {"const": "cert-manager.io"},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
)

ISSUER = _object(
    "cert-manager.io/v1",
    "Issuer",
    {
        "type": "object",
        "oneOf": [{"required": ["selfSigned"]}, {"required": ["ca"]}],
        "properties": {
            "selfSigned": {"type": "object", "additionalProperties": False},
            "ca": {
                "type": "object",
                "required": ["secretName"],
                "properties": {"secretName": STR},
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    },
)

# (apiVersion, kind) -> schema
# The Prometheus Operator's PodMonitor and PrometheusRule (the fields components/monitoring uses).
PROMETHEUS_DURATION: Schema = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
LABEL_NAME: Schema = {"type": "string", "pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}
MONITORING_API = "monitoring.coreos.com/v1"


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
    MONITORING_API,
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
                        "interval": PROMETHEUS_DURATION,
                        "scrapeTimeout": PROMETHEUS_DURATION,
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
        "for": PROMETHEUS_DURATION,
        "labels": STR_MAP,
        "annotations": STR_MAP,
    },
    "additionalProperties": False,
}
PROMETHEUS_RULE = _object(
    MONITORING_API,
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
                        "interval": PROMETHEUS_DURATION,
                        "rules": {"type": "array", "minItems": 1, "items": RULE},
                    },
                    "additionalProperties": False,
                },
            }
        },
        "additionalProperties": False,
    },
)


CRD_SCHEMAS: dict[tuple[str, str], Schema] = {
    (MONITORING_API, "PodMonitor"): POD_MONITOR,
    (MONITORING_API, "PrometheusRule"): PROMETHEUS_RULE,
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("postgresql.cnpg.io/v1", "Cluster"): CNPG_CLUSTER,
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): SCHEDULED_BACKUP,
    ("barmancloud.cnpg.io/v1", "ObjectStore"): BARMAN_OBJECT_STORE,
    ("cert-manager.io/v1", "Certificate"): CERTIFICATE,
    ("cert-manager.io/v1", "Issuer"): ISSUER,
}
