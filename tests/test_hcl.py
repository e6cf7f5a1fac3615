"""nomadgen.hcl: JSON API job -> HCL2 jobspec.

Round trips go through python-hcl2 8.1.4 and tests/hcl_parity.py (an independent
HCL -> API JSON converter), never through nomadgen.hcl's own table.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import hcl2
import pytest
from lark.exceptions import LarkError
from nomad_jobcheck.jobspec import shared_dir

import nomadgen.hcl
from nomadgen.errors import RenderError
from nomadgen.hcl import escape_string, format_duration, to_hcl
from tests.hcl_parity import LiveTemplate, hcl_to_job, parse_duration, unescape

NOMAD_SHARED = shared_dir() / "nomad"  # ../shared or $NOMADGEN_SHARED
EXAMPLES = NOMAD_SHARED / "examples"
S = 1_000_000_000  # one second in ns

# --- normaliser (test-side knowledge of the API, kept apart from the writer's table) ----------

READ_ONLY = {
    "Status",
    "StatusDescription",
    "Version",
    "Stable",
    "SubmitTime",
    "CreateIndex",
    "ModifyIndex",
    "JobModifyIndex",
    "Stop",
    "ParentID",
    "Dispatched",
    "DispatchIdempotencyToken",
    "NomadTokenID",
    "ConsulToken",
    "VaultToken",
    "ConsulNamespace",
    "VaultNamespace",
}
READ_ONLY_AT_TOP = {"Payload"}
# string maps: their values are data, "" included
STRING_MAPS = {
    "Meta",
    "Env",
    "CanaryMeta",
    "TaggedAddresses",
    "GetterOptions",
    "GetterHeaders",
    "Header",
    "Args",
}
# Go api fields that are not pointers: zero and absent are the same value
NON_POINTER = {
    ("Tasks", "Leader"),
    ("Tasks", "ShutdownDelay"),
    ("Lifecycle", "Sidecar"),
    ("DynamicPorts", "Value"),
    ("ReservedPorts", "To"),
    ("DynamicPorts", "To"),
    ("Services", "EnableTagOverride"),
}


def _config_canon(v):
    """Nomad reads `k { ... }`, `k = { ... }` and `k = [{ ... }]` in a config body alike."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if x is None or x == "" or x == [] or x == {}:
                continue
            x = _config_canon(x)
            out[k] = [x] if isinstance(x, dict) else x
        return out
    if isinstance(v, list):
        return [_config_canon(x) for x in v]
    return v


def normalise(obj, parent: str = "Job"):
    if isinstance(obj, list):
        return [normalise(x, parent) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {}
    for k, v in obj.items():
        if v is None or k in READ_ONLY or (parent == "Job" and k in READ_ONLY_AT_TOP):
            continue
        if k in ("Config", "Policy"):
            v = _config_canon(v)
        elif k in STRING_MAPS and isinstance(v, dict):
            v = {mk: mv for mk, mv in v.items() if mv is not None}
        else:
            v = normalise(v, k)
        if v == "" or v == [] or v == {}:
            continue
        if (parent, k) in NON_POINTER and v in (0, False):
            continue
        out[k] = v
    if parent == "Job":
        out.setdefault("Name", out.get("ID"))
    if parent == "Volumes":  # a map of volume name -> request
        for name, req in out.items():
            req.setdefault("Name", name)
    return out


def canon_configs(obj):
    """Apply only the config equivalence to a round-tripped job (nothing else is forgiven)."""
    if isinstance(obj, list):
        return [canon_configs(x) for x in obj]
    if isinstance(obj, dict):
        return {
            k: _config_canon(v) if k in ("Config", "Policy") else canon_configs(v)
            for k, v in obj.items()
        }
    return obj


def round_trip(job: dict) -> dict:
    # The writer keeps "" in pointer fields (Nomad's proof in test_nomad_proof shows why);
    # here both sides forgive empty values alike.
    return normalise(canon_configs(hcl_to_job(to_hcl(job))))


def load_example(name: str) -> dict:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(
            f"{path} is absent: the shared Nomad examples are not beside the repo (set NOMADGEN_SHARED)"
        )
    data = json.loads(path.read_text())
    return data["Job"] if set(data) == {"Job"} else data


# --- parity with Nomad's own JSON jobs ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["example-short.json", "json-jobs-doc-example.json", "job-read-response.json"]
)
def test_nomad_example_round_trips(name):
    job = load_example(name)
    assert round_trip(job) == normalise(job)


def test_example_short_reads_like_nomads_own_hcl():
    text = to_hcl(load_example("example-short.json"))
    assert 'job "example" {' in text
    assert '  group "cache" {' in text
    assert '      port "db" {\n        to = 6379\n      }' in text
    assert '        image          = "redis:7"' in text
    # zero values of Go non-pointer fields are the same as absent: not written
    for noise in ("leader", "shutdown_delay", "kill_signal", "user", "static", "mode ="):
        assert noise not in text


def test_read_only_fields_are_dropped():
    job = {
        "ID": "j",
        **{k: "x" for k in READ_ONLY},
        "Payload": "eA==",
        "TaskGroups": [
            {
                "Name": "g",
                "Scaling": {"ID": "s1", "Namespace": "n", "Target": {"Job": "j"}, "Max": 2},
            }
        ],
    }
    assert to_hcl(job) == 'job "j" {\n  group "g" {\n    scaling {\n      max = 2\n    }\n  }\n}\n'


def test_job_read_response_drops_server_fields():
    job = load_example("job-read-response.json")
    text = to_hcl(job)
    for field in (
        "Status",
        "status",
        "create_index",
        "modify_index",
        "job_modify_index",
        "vault_token",
        "parent_id",
    ):
        assert field not in text
    assert 'cron             = "* * * * *"' in text  # SpecType "cron" is implied
    assert "spec_type" not in text


# --- a job touching most of the table ----------------------------------------------------------

KITCHEN_SINK = {
    "ID": "kitchen-sink",
    "Name": "Kitchen Sink",
    "Namespace": "apps",
    "Region": "eu",
    "Type": "service",
    "Priority": 70,
    "AllAtOnce": False,
    "Datacenters": ["dc1", "dc2"],
    "NodePool": "prod",
    "Meta": {"owner": "team-a", "a.b": "dotted", "empty": ""},
    "Constraints": [
        {"LTarget": "${attr.kernel.name}", "Operand": "=", "RTarget": "linux"},
        {"Operand": "distinct_hosts", "RTarget": "true"},
    ],
    "Affinities": [
        {"LTarget": "${node.datacenter}", "Operand": "=", "RTarget": "dc1", "Weight": -50}
    ],
    "Spreads": [
        {
            "Attribute": "${node.datacenter}",
            "Weight": 100,
            "SpreadTarget": [{"Value": "dc1", "Percent": 60}, {"Value": "dc 2", "Percent": 40}],
        }
    ],
    "Update": {
        "MaxParallel": 2,
        "HealthCheck": "checks",
        "MinHealthyTime": 10 * S,
        "HealthyDeadline": 300 * S,
        "ProgressDeadline": 600 * S,
        "AutoRevert": True,
        "AutoPromote": False,
        "Canary": 1,
        "Stagger": 30 * S,
    },
    "Migrate": {
        "MaxParallel": 1,
        "HealthCheck": "task_states",
        "MinHealthyTime": 15 * S,
        "HealthyDeadline": 90 * S,
    },
    "Reschedule": {
        "Attempts": 0,
        "Interval": 0,
        "Delay": 30 * S,
        "DelayFunction": "exponential",
        "MaxDelay": 3600 * S,
        "Unlimited": True,
    },
    "UI": {"Description": "A *test* job", "Links": [{"Label": "Docs", "URL": "https://x/doc"}]},
    "Multiregion": {
        "Strategy": {"MaxParallel": 1, "OnFailure": "fail_all"},
        "Regions": [{"Name": "east", "Count": 2, "Datacenters": ["e1"], "Meta": {"tier": "1"}}],
    },
    "TaskGroups": [
        {
            "Name": "web",
            "Count": 3,
            "ShutdownDelay": 5 * S,
            "Meta": {"group": "web"},
            "Constraints": [
                {"LTarget": "${meta.rack}", "Operand": "distinct_property", "RTarget": "2"}
            ],
            "Consul": {"Namespace": "ns1"},
            "Networks": [
                {
                    "Mode": "bridge",
                    "Hostname": "web-host",
                    "DNS": {"Servers": ["1.1.1.1"], "Options": ["ndots:2"]},
                    "CNI": {"Args": {"IgnoreUnknown": "true", "x.y": "z"}},
                    "ReservedPorts": [
                        {"Label": "lb", "Value": 8080, "To": -1, "HostNetwork": "public"}
                    ],
                    "DynamicPorts": [
                        {"Label": "http", "Value": 0, "To": 8080},
                        {"Label": "metrics"},
                    ],
                }
            ],
            "Volumes": {
                "data": {"Name": "data", "Type": "host", "Source": "data", "ReadOnly": True},
                "csi": {
                    "Type": "csi",
                    "Source": "vol",
                    "AccessMode": "single-node-writer",
                    "AttachmentMode": "file-system",
                    "PerAlloc": True,
                    "MountOptions": {"FSType": "ext4", "MountFlags": ["noatime"]},
                },
            },
            "Services": [
                {
                    "Name": "web",
                    "PortLabel": "http",
                    "Provider": "consul",
                    "Tags": ["v1", "${NOMAD_META_x}"],
                    "CanaryTags": ["canary"],
                    "Meta": {"version": "1"},
                    "TaggedAddresses": {"lan": "10.0.0.1"},
                    "Weights": {"Passing": 10, "Warning": 1},
                    "AddressMode": "auto",
                    "OnUpdate": "require_healthy",
                    "CheckRestart": {"Limit": 3, "Grace": 90 * S, "IgnoreWarnings": True},
                    "Checks": [
                        {
                            "Name": "http",
                            "Type": "http",
                            "Path": "/health",
                            "PortLabel": "http",
                            "Method": "GET",
                            "Interval": 10 * S,
                            "Timeout": 2 * S,
                            "Header": {"Authorization": ["Basic x"], "X-Forwarded-For": ["a", "b"]},
                            "CheckRestart": {"Limit": 2, "Grace": 250_000_000},
                            "TaskName": "app",
                            "SuccessBeforePassing": 2,
                            "FailuresBeforeCritical": 3,
                            "InitialStatus": "passing",
                            "OnUpdate": "ignore_warnings",
                        }
                    ],
                    "Connect": {
                        "SidecarService": {
                            "Tags": ["mesh"],
                            "Proxy": {
                                "LocalServicePort": 8080,
                                "Upstreams": [
                                    {
                                        "DestinationName": "db",
                                        "LocalBindPort": 5432,
                                        "MeshGateway": {"Mode": "local"},
                                    }
                                ],
                                "Expose": {
                                    "Paths": [
                                        {
                                            "Path": "/health",
                                            "Protocol": "http",
                                            "LocalPathPort": 8080,
                                            "ListenerPort": "http",
                                        }
                                    ]
                                },
                                "Config": {"protocol": "http", "local_connect_timeout_ms": 5000},
                            },
                        }
                    },
                }
            ],
            "RestartPolicy": {
                "Attempts": 2,
                "Interval": 1800 * S,
                "Delay": 15 * S,
                "Mode": "fail",
                "RenderTemplates": True,
            },
            "ReschedulePolicy": {"Attempts": 3, "Interval": 3600 * S, "Unlimited": False},
            "EphemeralDisk": {"SizeMB": 500, "Sticky": True, "Migrate": False},
            "Disconnect": {"LostAfter": 3600 * S, "Replace": False, "Reconcile": "best_score"},
            "Scaling": {
                "Min": 1,
                "Max": 10,
                "Enabled": True,
                "Type": "horizontal",
                "Policy": {
                    "cooldown": "1m",
                    "evaluation_interval": "30s",
                    "check": [
                        {
                            "avg_cpu": [
                                {
                                    "source": "nomad-apm",
                                    "query": "avg_cpu",
                                    "strategy": [{"target-value": [{"target": 70}]}],
                                }
                            ]
                        }
                    ],
                },
            },
            "Tasks": [
                {
                    "Name": "app",
                    "Driver": "docker",
                    "User": "app",
                    "Leader": True,
                    "KillTimeout": 30 * S,
                    "KillSignal": "SIGINT",
                    "ShutdownDelay": 5 * S,
                    "Config": {
                        "image": "example/app:1.2.3",
                        "ports": ["http"],
                        "args": ["-addr", "${NOMAD_ADDR_http}"],
                        "auth": [{"username": "u", "password": 'p@ss"word'}],
                        "mount": [
                            {
                                "type": "bind",
                                "source": "a",
                                "target": "/a",
                                "readonly": True,
                                "bind_options": [{"propagation": "rshared"}],
                            },
                            {"type": "tmpfs", "target": "/tmp", "tmpfs_options": [{"size": 10000}]},
                        ],
                        "labels": [{"com.example.team": "a"}],
                        "sysctl": [{"net.core.somaxconn": "16384"}],
                        "logging": {"type": "syslog", "config": [{"tag": "app"}]},
                        "extra": {"nested": {"deep": [1, 2]}, "list": [{"a": 1}, {"b": "x"}]},
                        "force_pull": True,
                        "cpu_hard_limit": False,
                        "memory_hard_limit": 512,
                        "ratio": 1.5,
                        "entrypoint": [],
                    },
                    "Env": {"PORT": "${NOMAD_PORT_http}", "EMPTY": "", "a.b": "x"},
                    "Meta": {"task": "app"},
                    "Artifacts": [
                        {
                            "GetterSource": "https://x/a.tgz",
                            "RelativeDest": "local/a",
                            "GetterMode": "any",
                            "GetterInsecure": False,
                            "Chown": True,
                            "GetterOptions": {"checksum": "sha256:abc"},
                            "GetterHeaders": {"X-Token": "t"},
                        }
                    ],
                    "Templates": [
                        {
                            "EmbeddedTmpl": '{{ range service "db" }}{{ .Address }}:{{ .Port }}'
                            "{{ end }}\n${not_hcl} %{ nor_this }\n",
                            "DestPath": "local/db.env",
                            "ChangeMode": "script",
                            "ChangeScript": {
                                "Command": "/bin/reload",
                                "Args": ["-x"],
                                "Timeout": 5 * S,
                                "FailOnError": True,
                            },
                            "Envvars": True,
                            "Splay": 5 * S,
                            "Perms": "0600",
                            "LeftDelim": "[[",
                            "RightDelim": "]]",
                            "ErrMissingKey": True,
                            "Uid": 1000,
                            "Gid": 1000,
                            "Once": False,
                            "Wait": {"Min": 5 * S, "Max": 240 * S},
                        }
                    ],
                    "VolumeMounts": [
                        {
                            "Volume": "data",
                            "Destination": "/data",
                            "ReadOnly": True,
                            "PropagationMode": "private",
                        }
                    ],
                    "Vault": {
                        "Role": "app",
                        "Policies": ["p"],
                        "Env": False,
                        "ChangeMode": "signal",
                        "ChangeSignal": "SIGHUP",
                    },
                    "Consul": {"Namespace": "ns", "Partition": "part"},
                    "Identity": {"Env": True, "File": True},
                    "Identities": [
                        {
                            "Name": "vault_default",
                            "Audience": ["vault.io"],
                            "TTL": 3600 * S,
                            "ChangeMode": "restart",
                        }
                    ],
                    "RestartPolicy": {"Attempts": 1},
                    "LogConfig": {"MaxFiles": 5, "MaxFileSizeMB": 20, "Disabled": False},
                    "Resources": {
                        "CPU": 500,
                        "MemoryMB": 256,
                        "MemoryMaxMB": 512,
                        "Devices": [
                            {
                                "Name": "nvidia/gpu",
                                "Count": 1,
                                "Constraints": [
                                    {
                                        "LTarget": "${device.attr.memory}",
                                        "Operand": ">=",
                                        "RTarget": "2 GiB",
                                    }
                                ],
                            }
                        ],
                        "NUMA": {"Affinity": "prefer"},
                    },
                    "ScalingPolicies": [
                        {
                            "Type": "vertical_cpu",
                            "Min": 100,
                            "Max": 1000,
                            "Enabled": True,
                            "Policy": {"cooldown": "5m"},
                        }
                    ],
                    "Actions": [{"Name": "dump", "Command": "/bin/dump", "Args": ["-v"]}],
                },
                {
                    "Name": "cache",
                    "Driver": "docker",
                    "Lifecycle": {"Hook": "prestart", "Sidecar": True},
                    "Config": {"image": "memcached:1.6", "args": ["-p", "11211"]},
                    "Resources": {"CPU": 100, "MemoryMB": 64},
                },
            ],
        }
    ],
}


def test_kitchen_sink_round_trips():
    assert round_trip(KITCHEN_SINK) == normalise(KITCHEN_SINK)


def test_round_trip_check_can_fail():
    """The parity check sees a changed value, a lost field and a wrong name."""
    text = to_hcl(KITCHEN_SINK)
    expected = normalise(KITCHEN_SINK)
    assert hcl_to_job(text.replace("memory_max = 512", "memory_max = 513")) != expected
    assert hcl_to_job(text.replace('      user         = "app"\n', "")) != expected
    with pytest.raises(KeyError):
        hcl_to_job(text.replace("memory_max", "memory_maximum"))


def test_pointer_zero_values_are_kept():
    job = {
        "ID": "z",
        "Type": "batch",
        "Update": {"Canary": 0, "AutoRevert": False},
        "Periodic": {"Enabled": False, "Spec": "@daily", "SpecType": "cron"},
        "TaskGroups": [
            {
                "Name": "g",
                "Count": 0,
                "Tasks": [
                    {
                        "Name": "t",
                        "Driver": "exec",
                        "Vault": {"Env": False},
                        "Resources": {"CPU": 0},
                    }
                ],
            }
        ],
    }
    text = to_hcl(job)
    for line in (
        "count = 0",
        "canary      = 0",
        "auto_revert = false",
        "enabled = false",
        "env = false",
        "cpu = 0",
    ):
        assert line in text
    assert round_trip(job) == normalise(job)


# --- field names, checked against the reference table -----------------------------------------


def _job_with(where: str, fragment: dict) -> dict:
    task = {"Name": "t", "Driver": "docker"}
    group = {"Name": "g", "Tasks": [task]}
    job = {"ID": "j", "TaskGroups": [group]}
    {"job": job, "group": group, "task": task}[where].update(fragment)
    return job


REFERENCE_SNIPPETS = [
    # §1.2 job/group/task
    ("job", {"AllAtOnce": True}, "all_at_once = true"),
    ("job", {"NodePool": "p"}, 'node_pool = "p"'),
    ("job", {"Reschedule": {"Attempts": 1}}, "reschedule {\n    attempts = 1"),
    ("group", {"ReschedulePolicy": {"Attempts": 1}}, "reschedule {\n      attempts = 1"),
    (
        "group",
        {"RestartPolicy": {"Mode": "fail", "RenderTemplates": True}},
        'restart {\n      mode             = "fail"\n      render_templates = true',
    ),
    ("group", {"EphemeralDisk": {"SizeMB": 300}}, "ephemeral_disk {\n      size = 300"),
    ("group", {"Volumes": {"v": {"Type": "host"}}}, 'volume "v" {\n      type = "host"'),
    (
        "group",
        {
            "Networks": [
                {
                    "Mode": "bridge",
                    "DynamicPorts": [
                        {"Label": "http", "Value": 0, "To": 8080, "HostNetwork": "pub"}
                    ],
                }
            ]
        },
        (
            'network {\n      mode = "bridge"\n\n      port "http" {\n        to           = 8080\n'
            '        host_network = "pub"'
        ),
    ),
    (
        "group",
        {"Networks": [{"ReservedPorts": [{"Label": "lb", "Value": 8889}]}]},
        'port "lb" {\n        static = 8889',
    ),
    (
        "task",
        {"Resources": {"CPU": 200, "MemoryMB": 256, "MemoryMaxMB": 512}},
        "resources {\n        cpu        = 200\n        memory     = 256\n        memory_max = 512",
    ),
    (
        "task",
        {"KillTimeout": 10 * S, "KillSignal": "SIGINT"},
        'kill_timeout = "10s"\n      kill_signal  = "SIGINT"',
    ),
    (
        "task",
        {"Lifecycle": {"Hook": "prestart", "Sidecar": True}},
        'lifecycle {\n        hook    = "prestart"\n        sidecar = true',
    ),
    ("task", {"LogConfig": {"MaxFiles": 3}}, "logs {\n        max_files = 3"),
    (
        "task",
        {"VolumeMounts": [{"Volume": "v", "Destination": "/d"}]},
        'volume_mount {\n        volume      = "v"\n        destination = "/d"',
    ),
    # §2
    (
        "job",
        {"Constraints": [{"LTarget": "a", "Operand": "!=", "RTarget": "b"}]},
        'constraint {\n    attribute = "a"\n    operator  = "!="\n    value     = "b"',
    ),
    (
        "group",
        {"Spreads": [{"Attribute": "x", "SpreadTarget": [{"Value": "dc1", "Percent": 60}]}]},
        'target "dc1" {\n        percent = 60',
    ),
    # §3.1
    (
        "task",
        {"Services": [{"Name": "s", "PortLabel": "http", "TaskName": "t"}]},
        'name = "s"\n        port = "http"\n        task = "t"',
    ),
    (
        "task",
        {
            "Services": [
                {
                    "Checks": [
                        {
                            "Type": "http",
                            "Header": {"X-A": ["1"]},
                            "CheckRestart": {"Limit": 3, "Grace": 90 * S},
                        }
                    ]
                }
            ]
        },
        (
            'header {\n            X-A = ["1"]\n          }\n\n          check_restart {\n'
            '            limit = 3\n            grace = "1m30s"'
        ),
    ),
    # §4.1
    (
        "task",
        {
            "Templates": [
                {
                    "EmbeddedTmpl": "x",
                    "DestPath": "local/x",
                    "Envvars": True,
                    "LeftDelim": "[[",
                    "RightDelim": "]]",
                    "ErrMissingKey": True,
                }
            ]
        },
        (
            'data                 = "x"\n        destination          = "local/x"\n'
            "        env                  = true\n"
        ),
    ),
    (
        "task",
        {
            "Templates": [
                {
                    "ChangeScript": {"Command": "c", "FailOnError": True},
                    "Wait": {"Min": 5 * S, "Max": 240 * S},
                }
            ]
        },
        (
            'change_script {\n          command       = "c"\n          fail_on_error = true\n'
            '        }\n\n        wait {\n          min = "5s"\n          max = "4m"'
        ),
    ),
]


@pytest.mark.parametrize(("where", "fragment", "snippet"), REFERENCE_SNIPPETS)
def test_reference_field_names(where, fragment, snippet):
    job = _job_with(where, fragment)
    assert snippet in to_hcl(job)
    assert round_trip(job) == normalise(job)


def test_name_written_only_when_it_differs_from_id():
    assert "name" not in to_hcl({"ID": "web", "Name": "web"})
    assert '  name = "Web API"' in to_hcl({"ID": "web", "Name": "Web API"})


# --- driver config ----------------------------------------------------------------------------


def test_driver_config_blocks_and_attributes():
    job = _job_with(
        "task",
        {
            "Config": {
                "image": "x",
                "auth": {"username": "u"},
                "port_map": [{"db": 6379}],
                "mount": [{"type": "bind"}, {"type": "tmpfs"}],
                "sysctl": [{"net.core.somaxconn": "16384"}],
                "custom": {"k": "v"},
            }
        },
    )
    text = to_hcl(job)
    assert 'auth {\n          username = "u"\n        }' in text
    assert "port_map {\n          db = 6379\n        }" in text
    assert text.count("        mount {") == 2
    assert 'sysctl = {\n          "net.core.somaxconn" = "16384"\n        }' in text
    assert 'custom = {\n          k = "v"\n        }' in text
    assert round_trip(job) == normalise(job)


def test_scaling_policy_checks_are_labelled_blocks():
    policy = {
        "check": [
            {
                "avg cpu": [
                    {"source": "prometheus", "strategy": [{"target-value": [{"target": 70}]}]}
                ]
            }
        ]
    }
    job = _job_with("group", {"Scaling": {"Min": 1, "Max": 3, "Policy": policy}})
    text = to_hcl(job)
    assert (
        'check "avg cpu" {\n          source = "prometheus"\n\n'
        '          strategy "target-value" {\n            target = 70\n'
    ) in text
    assert round_trip(job) == normalise(job)


def test_deprecated_expose_spelling_written_once():
    path = {"Path": "/h", "Protocol": "http", "LocalPathPort": 80, "ListenerPort": "x"}
    both = {"Expose": {"Paths": [path]}, "ExposeConfig": {"Path": [path]}}
    old = {"ExposeConfig": {"Path": [path]}}
    for proxy in (both, old):
        job = _job_with("group", {"Services": [{"Connect": {"SidecarService": {"Proxy": proxy}}}]})
        text = to_hcl(job)
        assert text.count("expose {") == 1 and text.count("path {") == 1
        assert round_trip(job)["TaskGroups"][0]["Services"][0]["Connect"]["SidecarService"][
            "Proxy"
        ] == {"Expose": {"Paths": [path]}}


def test_unknown_fields_are_written_snake_case():
    job = {
        "ID": "j",
        "FutureField": 5,
        "FutureBlock": {"InnerThing": "x", "Empty": None},
        "CreateIndex": 9,
    }
    text = to_hcl(job)
    assert "  future_field = 5\n" in text
    assert '  future_block {\n    inner_thing = "x"\n  }\n' in text
    assert "create_index" not in text and "empty" not in text


def test_unwritable_values_raise():
    with pytest.raises(RenderError, match="bare Job"):
        to_hcl({"Job": {"ID": "x"}})
    with pytest.raises(RenderError, match="no ID"):
        to_hcl({"Name": "x"})
    with pytest.raises(RenderError, match="cannot be written"):
        to_hcl(_job_with("task", {"Config": {"a.b": 1}}))
    with pytest.raises(RenderError):
        to_hcl(_job_with("task", {"Config": {"ratio": math.nan}}))
    with pytest.raises(RenderError, match="surrogate"):
        escape_string("bad \ud800")
    with pytest.raises(RenderError, match="vertical_cpu"):
        to_hcl(_job_with("task", {"ScalingPolicies": [{"Type": "horizontal", "Max": 2}]}))
    with pytest.raises(RenderError, match="SpecType"):
        to_hcl({"ID": "j", "Periodic": {"Spec": "x", "SpecType": "test"}})
    with pytest.raises(RenderError, match="expected a list"):
        to_hcl({"ID": "j", "TaskGroups": {"Name": "g"}})


# --- escaping ---------------------------------------------------------------------------------

NASTY = [
    "${foo}",
    "%{ if }",
    "$${already}",
    "%%{already}",
    "trailing $",
    "trailing %",
    "$$$${x}",
    'say "quotes"',
    "C:\\path\\",
    "back\\slash\\n",
    "line1\nline2\r\n",
    "tab\there",
    "{{ .Address }}",
    "zürich",
    "東京",
    "emoji 😀 and 👨‍👩‍👧",
    "bell\x07 nul\x00 esc\x1b del\x7f",
    "bidi \u202e override",
    "zero\u200bwidth",
    "line\u2028sep",
    "",
    " ",
    "${a} ${b} %{c}",
    "$ {not} % {not}",
]


@pytest.mark.parametrize("s", NASTY)
def test_escape_string_round_trips_exactly(s):
    literal = escape_string(s)
    parsed = hcl2.loads(f"a = {literal}\n")["a"]
    assert unescape(parsed) == s
    assert "\n" not in literal and "\r" not in literal


def test_escaped_values_round_trip_everywhere():
    values = [v for v in NASTY if v]
    job = _job_with(
        "task",
        {
            "Env": {f"E{i}": v for i, v in enumerate(values)},
            "Meta": {**{f"k.{i}": v for i, v in enumerate(values)}, 'we"ird ${key}\n': "v"},
            "Config": {"image": "x", "args": values},
            "Services": [{"Name": "s", "Tags": values}],
            "Templates": [{"EmbeddedTmpl": "\n".join(values), "DestPath": "local/x"}],
        },
    )
    job["ID"] = 'id with "quotes" ${x}'
    job["TaskGroups"][0]["Name"] = "grp %{y}"
    back = round_trip(job)
    assert back == normalise(job)
    task = back["TaskGroups"][0]["Tasks"][0]
    assert task["Env"]["E0"] == "${foo}"
    assert task["Config"]["args"] == values
    assert back["ID"] == 'id with "quotes" ${x}'


def _naive(s: str) -> str:
    return f'"{s}"'


@pytest.mark.parametrize(
    ("s", "failure"),
    [
        ("${var.foo}", LiveTemplate),
        ("${local.x}", LiveTemplate),
        ("%{ if true }x%{ endif }", LiveTemplate),
        ('say "hi"', LarkError),
        ("a\\b", ValueError),
    ],
)
def test_naive_writer_fails_the_same_round_trip(monkeypatch, s, failure):
    """The escaping checks are not vacuous: a writer that only adds quotes is caught."""
    job = _job_with("task", {"Env": {"A": s}, "Meta": {"b": s}})
    assert round_trip(job) == normalise(job)
    # _escape is the escaper behind escape_string and the writer's fast paths.
    monkeypatch.setattr(nomadgen.hcl, "_escape", _naive)
    with pytest.raises(failure):
        assert round_trip(job) == normalise(job)


@pytest.mark.parametrize(
    ("s", "literal"),
    [
        ("bell\x07", '"bell\\u0007"'),
        ("del\x7f", '"del\\u007F"'),
        ("c1\x85", '"c1\\u0085"'),
        ("bidi\u202e", '"bidi\\u202E"'),
        ("zw\u200b", '"zw\\u200B"'),
        ("ls\u2028", '"ls\\u2028"'),
        ("tag\U000e0041", '"tag\\U000E0041"'),
        ("bom\ufeff", '"bom\\uFEFF"'),
        ("zürich 東京 😀", '"zürich 東京 😀"'),
        ("family 👨\u200d👩", '"family 👨\u200d👩"'),
        ('q"b\\n\n\r\t', '"q\\"b\\\\n\\n\\r\\t"'),
    ],
)
def test_invisible_characters_are_shown_as_escapes(s, literal):
    assert escape_string(s) == literal
    assert unescape(hcl2.loads(f"a = {literal}\n")["a"]) == s


def test_unterminated_template_start_is_escaped():
    # python-hcl2 cannot read "$${foo" (its ESCAPED_INTERPOLATION needs a closing brace),
    # so check the text against HCL's rule directly.
    assert escape_string("${foo") == '"$${foo"'
    assert escape_string("%{") == '"%%{"'
    assert escape_string("a\\${b}") == '"a\\\\$${b}"'


# --- formatting -------------------------------------------------------------------------------

GOLDEN_JOB = {
    "ID": "web",
    "Name": "web",
    "Type": "service",
    "Datacenters": ["*"],
    "Status": "running",
    "Version": 3,
    "ModifyIndex": 42,
    "Update": {"MaxParallel": 1, "Canary": 1, "AutoRevert": True, "AutoPromote": True},
    "TaskGroups": [
        {
            "Name": "app",
            "Count": 2,
            "Networks": [
                {"Mode": "bridge", "DynamicPorts": [{"Label": "http", "Value": 0, "To": 8080}]}
            ],
            "Services": [
                {
                    "Name": "web-api",
                    "PortLabel": "http",
                    "Provider": "consul",
                    "Tags": ["v1"],
                    "Checks": [
                        {"Type": "http", "Path": "/health", "Interval": 10 * S, "Timeout": 2 * S}
                    ],
                }
            ],
            "Tasks": [
                {
                    "Name": "app",
                    "Driver": "docker",
                    "Config": {"image": "example/app:1.2.3", "ports": ["http"]},
                    "Env": {"GREETING": "hello ${name}"},
                    "Resources": {"CPU": 200, "MemoryMB": 256},
                }
            ],
        }
    ],
}

GOLDEN_HCL = """\
job "web" {
  datacenters = ["*"]
  type        = "service"

  update {
    max_parallel = 1
    auto_revert  = true
    auto_promote = true
    canary       = 1
  }

  group "app" {
    count = 2

    network {
      mode = "bridge"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "web-api"
      provider = "consul"
      port     = "http"
      tags     = ["v1"]

      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "app" {
      driver = "docker"

      config {
        image = "example/app:1.2.3"
        ports = ["http"]
      }

      env {
        GREETING = "hello $${name}"
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
"""


def test_golden_snippet():
    assert to_hcl(GOLDEN_JOB) == GOLDEN_HCL


def test_multiline_value_ends_alignment_run():
    text = to_hcl({"ID": "j", "Meta": {"a.b": "1"}, "Type": "batch", "AllAtOnce": True})
    assert 'type        = "batch"\n  all_at_once = true\n' in text
    assert '  meta = {\n    "a.b" = "1"\n  }\n' in text


def _shuffled(obj, rng):
    if isinstance(obj, dict):
        keys = list(obj)
        rng.shuffle(keys)
        return {k: _shuffled(obj[k], rng) for k in keys}
    if isinstance(obj, list):
        return [_shuffled(x, rng) for x in obj]
    return obj


def test_deterministic_and_insertion_order_free():
    first = to_hcl(KITCHEN_SINK)
    assert to_hcl(copy.deepcopy(KITCHEN_SINK)) == first
    rng = random.Random(7)
    for _ in range(5):
        assert to_hcl(_shuffled(KITCHEN_SINK, rng)) == first


def test_input_not_modified():
    job = copy.deepcopy(KITCHEN_SINK)
    to_hcl(job)
    assert job == KITCHEN_SINK


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (10 * S, "10s"),
        (90 * S, "1m30s"),
        (300 * S, "5m"),
        (250_000_000, "250ms"),
        (3600 * S, "1h"),
        (0, "0s"),
        (1_500_000_000, "1.5s"),
        (3601 * S, "1h1s"),
        (1500, "1.5us"),
        (7, "7ns"),
        (-2 * S, "-2s"),
        (26 * 3600 * S, "26h"),
        (60 * S + 1, "1m0.000000001s"),
    ],
)
def test_format_duration(ns, text):
    assert format_duration(ns) == text
    assert parse_duration(text) == ns


def test_durations_in_job():
    job = _job_with("group", {"RestartPolicy": {"Interval": 90 * S, "Delay": 250_000_000}})
    text = to_hcl(job)
    assert 'interval = "1m30s"' in text and 'delay    = "250ms"' in text


# --- the module stays light -------------------------------------------------------------------


def test_stdlib_only_imports():
    tree = ast.parse(Path(__file__).resolve().parents[1].joinpath("nomadgen/hcl.py").read_text())
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    assert modules - set(sys.stdlib_module_names) <= {"nomadgen"}
    probe = (
        "import sys, nomadgen.hcl; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'hcl2', 'lark', 'nomad', 'consul', 'requests', 'typer'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"


def test_blocks_kept_by_content_are_written_as_they_are_alone():
    """to_hcl(memo=) writes a Resources, EphemeralDisk, Networks or Config block once per
    content and reuses its lines; values Python finds equal but HCL writes differently (True
    and 1, 1 and 1.0, a Runtime reference and the same text as a plain string) are different
    content."""
    from nomadgen.hcl import to_hcl
    from nomadgen.model import Runtime

    def job(i, config, resources):
        task = {"Name": "t", "Driver": "docker", "Config": config, "Resources": resources}
        return {"ID": f"j{i}", "TaskGroups": [{"Name": "g", "Tasks": [task]}]}

    variants = [
        ({"image": "x", "privileged": True}, {"CPU": 100, "MemoryMB": 128}),
        ({"image": "x", "privileged": 1}, {"CPU": 100, "MemoryMB": 128}),
        ({"image": "x", "privileged": 1.0}, {"CPU": 100.0, "MemoryMB": 128}),
        ({"image": Runtime("${node.datacenter}")}, {"CPU": 100, "MemoryMB": 128}),
        ({"image": "${node.datacenter}"}, {"CPU": 100, "MemoryMB": 128}),
        ({"image": "x", "args": ["a", "b"]}, {"CPU": 100, "MemoryMB": 128}),
        ({"image": "x", "args": ["a", "b"]}, {"CPU": 100, "MemoryMB": 128}),
        ({"image": "x", "args": [["a"], "b"]}, {"CPU": 100, "MemoryMB": 128}),
    ]
    memo: dict = {}
    for i, (config, resources) in enumerate(variants):
        assert to_hcl(job(i, config, resources), memo=memo) == to_hcl(job(i, config, resources))
    assert memo
