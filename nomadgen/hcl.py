"""Write a Nomad job, given in its JSON API form, as an HCL2 jobspec for humans.

The JSON API form (CamelCase keys, durations in integer nanoseconds, what `POST /v1/jobs`
takes inside `{"Job": ...}`) is the source of truth; this module only renders it.

    to_hcl(job)          the bare Job dict -> jobspec text (deterministic, `nomad fmt` layout)
    escape_string(s)     a quoted HCL string literal that can never interpolate
    format_duration(ns)  integer nanoseconds -> Go duration string ("1m30s")

The translation is table-driven (`_SPECS`, one entry per api struct, in canonical order).
Fields the table does not know are still written, under their snake_case name, so nothing is
silently lost; `READ_ONLY_FIELDS` are dropped, as are nulls, empty lists/maps and empty strings
(outside string maps), and 0/false for Go non-pointer fields, where zero means unset.

Every string is written so that Nomad's parser (jobspec2) reads back exactly the JSON value,
and no value can become live HCL: `${` and `%{` are escaped (`$${`, `%%{`), except Nomad
runtime references (RUNTIME_REF) in constraint, affinity and spread targets and in `Runtime`
strings (text nomadgen writes, never a manifest value), which are written as Nomad users write
them: `"${node.datacenter}"`. Multi-line text ending in a newline is a heredoc (`<<-EOT`).
tests/test_nomad_proof.py proves each form with Nomad 1.5.8's own parser. In a driver config
Nomad reads a block, `k = {...}` and `k = [{...}]` all as `[{...}]`, so an object there comes
back from Nomad as a one-element list.

Stdlib only: this sits on the CLI's start-up path.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from nomadgen.errors import RenderError
from nomadgen.model import Runtime

__all__ = [
    "CONFIG_BLOCK_NAMES",
    "DURATION_FIELDS",
    "LABELLED_CONFIG_BLOCK_NAMES",
    "READ_ONLY_FIELDS",
    "RUNTIME_FIELDS",
    "RUNTIME_REF",
    "escape_string",
    "format_duration",
    "to_hcl",
]

# Fields Nomad fills in, or that have no jobspec form; never written. A bare name is dropped
# wherever it appears in a structured block; "Parent.Name" only under that JSON key
# ("Job" is the top level). Free-form maps (meta, env, driver config) are never filtered.
READ_ONLY_FIELDS = frozenset(
    {
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
        "Job.Payload",
        # set by CLI flags or the server, no jobspec field
        "ConsulNamespace",
        "VaultNamespace",
        # submit-time secrets (removed from the API in 1.10): never put a token in a file
        "ConsulToken",
        "VaultToken",
        # scaling policies: the server assigns these
        "Scaling.ID",
        "Scaling.Namespace",
        "Scaling.Target",
        "ScalingPolicies.ID",
        "ScalingPolicies.Namespace",
        "ScalingPolicies.Target",
    }
)

# Placement attributes: Nomad reads `${...}` in them as a runtime reference by definition, so
# one is written as Nomad users write it (see RUNTIME_REF). Same naming rule as above.
RUNTIME_FIELDS = frozenset(
    {
        "Constraints.LTarget",
        "Constraints.RTarget",
        "Affinities.LTarget",
        "Affinities.RTarget",
        "Spreads.Attribute",
    }
)

# Integer nanoseconds in JSON, Go duration strings in HCL. Same naming rule as above.
DURATION_FIELDS = frozenset(
    {
        "Interval",
        "Timeout",
        "Delay",
        "MaxDelay",
        "Grace",
        "MinHealthyTime",
        "HealthyDeadline",
        "ProgressDeadline",
        "Stagger",
        "KillTimeout",
        "ShutdownDelay",
        "Splay",
        "VaultGrace",
        "MaxClientDisconnect",
        "StopAfterClientDisconnect",
        "LostAfter",
        "StopOnClientAfter",
        "HealthTimeout",
        "TTL",
        "ConnectTimeout",
        "Wait.Min",
        "Wait.Max",
    }
)

# Driver-config keys written as blocks (docker/podman/qemu docs and the docker hclspec) when
# their value is an object, or a list of objects, with identifier keys. Anything else is an
# attribute. Nomad reads a block and an attribute object the same way (both become a list of
# objects in the API form), so the choice is only about looking like the docs.
CONFIG_BLOCK_NAMES = frozenset(
    {
        "auth",
        "logging",
        "config",
        "mount",
        "mounts",
        "devices",
        "healthchecks",
        "port_map",
        "labels",
        "sysctl",
        "ulimit",
        "storage_opt",
        "bind_options",
        "tmpfs_options",
        "volume_options",
        "driver_config",
    }
)

# Config keys written as labelled blocks when the value has the shape Nomad gives them,
# {"check": [{"<label>": [{...}]}]}: the autoscaler's check/strategy/target in scaling policies.
LABELLED_CONFIG_BLOCK_NAMES = frozenset({"check", "strategy", "target"})

# Table kinds:
#   attr             attribute
#   attr_nonzero     attribute of a Go non-pointer field: 0/false omitted
#   block            single block
#   blocks           list -> repeated blocks
#   labelled_blocks  list -> labelled blocks (label = the sub-table's label field)
#   map_blocks       map -> labelled blocks (label = key)
#   string_map       string map (block form, attribute form if a key is not an identifier)
#   map_attr         map attribute
#   free_form        driver config, proxy config, policy: blocks and attributes by shape
#   label            consumed as the parent's block label
#   implied          no HCL form; dropped when equal to the given value (jobspec2 sets it)
#   alias            deprecated JSON spelling of another field; written only if that one is absent
#   task_scaling     task scaling policies: scaling "cpu" / "mem"
_Field = tuple[str, str, str, Any]


def _f(json: str, hcl: str = "", kind: str = "attr", sub: Any = None) -> _Field:
    return (json, hcl, kind, sub)


_CONSTRAINTS = _f("Constraints", "constraint", "blocks", "Constraint")
_AFFINITIES = _f("Affinities", "affinity", "blocks", "Affinity")

_SPECS: dict[str, tuple[_Field, ...]] = {
    "Job": (
        _f("ID", kind="label"),
        _f("Name", "name"),
        _f("Namespace", "namespace"),
        _f("Region", "region"),
        _f("Datacenters", "datacenters"),
        _f("NodePool", "node_pool"),
        _f("Type", "type"),
        _f("Priority", "priority"),
        _f("AllAtOnce", "all_at_once"),
        _f("Meta", "meta", "string_map"),
        _CONSTRAINTS,
        _AFFINITIES,
        _f("Spreads", "spread", "blocks", "Spread"),
        _f("Update", "update", "block", "UpdateStrategy"),
        _f("Migrate", "migrate", "block", "MigrateStrategy"),
        _f("Reschedule", "reschedule", "block", "ReschedulePolicy"),
        _f("Periodic", "periodic", "block", "PeriodicConfig"),
        _f("ParameterizedJob", "parameterized", "block", "ParameterizedJobConfig"),
        _f("Multiregion", "multiregion", "block", "Multiregion"),
        _f("UI", "ui", "block", "JobUIConfig"),
        _f("TaskGroups", "group", "labelled_blocks", ("TaskGroup", "Name")),
    ),
    "TaskGroup": (
        _f("Name", kind="label"),
        _f("Count", "count"),
        _f("ShutdownDelay", "shutdown_delay"),
        _f("StopAfterClientDisconnect", "stop_after_client_disconnect"),
        _f("MaxClientDisconnect", "max_client_disconnect"),
        _f("PreventRescheduleOnLost", "prevent_reschedule_on_lost"),
        _f("Meta", "meta", "string_map"),
        _CONSTRAINTS,
        _AFFINITIES,
        _f("Spreads", "spread", "blocks", "Spread"),
        _f("Consul", "consul", "block", "Consul"),
        _f("Networks", "network", "blocks", "NetworkResource"),
        _f("Volumes", "volume", "map_blocks", ("VolumeRequest", "Name")),
        _f("Services", "service", "blocks", "Service"),
        _f("RestartPolicy", "restart", "block", "RestartPolicy"),
        _f("ReschedulePolicy", "reschedule", "block", "ReschedulePolicy"),
        _f("Update", "update", "block", "UpdateStrategy"),
        _f("Migrate", "migrate", "block", "MigrateStrategy"),
        _f("EphemeralDisk", "ephemeral_disk", "block", "EphemeralDisk"),
        _f("Disconnect", "disconnect", "block", "DisconnectStrategy"),
        _f("Scaling", "scaling", "block", "ScalingPolicy"),
        _f("Tasks", "task", "labelled_blocks", ("Task", "Name")),
    ),
    "Task": (
        _f("Name", kind="label"),
        _f("Driver", "driver", "attr_nonzero"),
        _f("User", "user", "attr_nonzero"),
        _f("Leader", "leader", "attr_nonzero"),
        _f("Kind", "kind", "attr_nonzero"),
        _f("KillTimeout", "kill_timeout"),
        _f("KillSignal", "kill_signal", "attr_nonzero"),
        _f("ShutdownDelay", "shutdown_delay", "attr_nonzero"),
        _f("Lifecycle", "lifecycle", "block", "TaskLifecycle"),
        _f("Config", "config", "free_form"),
        _f("Env", "env", "string_map"),
        _f("Meta", "meta", "string_map"),
        _CONSTRAINTS,
        _AFFINITIES,
        _f("Artifacts", "artifact", "blocks", "TaskArtifact"),
        _f("Templates", "template", "blocks", "Template"),
        _f("Services", "service", "blocks", "Service"),
        _f("VolumeMounts", "volume_mount", "blocks", "VolumeMount"),
        _f("Vault", "vault", "block", "Vault"),
        _f("Consul", "consul", "block", "Consul"),
        _f("Identity", "identity", "block", "WorkloadIdentity"),
        _f("Identities", "identity", "blocks", "WorkloadIdentity"),
        _f("RestartPolicy", "restart", "block", "RestartPolicy"),
        _f("LogConfig", "logs", "block", "LogConfig"),
        _f("Resources", "resources", "block", "Resources"),
        _f("DispatchPayload", "dispatch_payload", "block", "DispatchPayloadConfig"),
        _f("CSIPluginConfig", "csi_plugin", "block", "TaskCSIPluginConfig"),
        _f("ScalingPolicies", "scaling", "task_scaling", "ScalingPolicy"),
        _f("Actions", "action", "labelled_blocks", ("Action", "Name")),
        _f("Schedule", "schedule", "block", "TaskSchedule"),
    ),
    "Constraint": (
        _f("LTarget", "attribute", "attr_nonzero"),
        _f("Operand", "operator", "attr_nonzero"),
        _f("RTarget", "value", "attr_nonzero"),
    ),
    "Affinity": (
        _f("LTarget", "attribute", "attr_nonzero"),
        _f("Operand", "operator", "attr_nonzero"),
        _f("RTarget", "value", "attr_nonzero"),
        _f("Weight", "weight"),
    ),
    "Spread": (
        _f("Attribute", "attribute", "attr_nonzero"),
        _f("Weight", "weight"),
        _f("SpreadTarget", "target", "labelled_blocks", ("SpreadTarget", "Value")),
    ),
    "SpreadTarget": (_f("Value", kind="label"), _f("Percent", "percent", "attr_nonzero")),
    "UpdateStrategy": (
        _f("MaxParallel", "max_parallel"),
        _f("HealthCheck", "health_check"),
        _f("MinHealthyTime", "min_healthy_time"),
        _f("HealthyDeadline", "healthy_deadline"),
        _f("ProgressDeadline", "progress_deadline"),
        _f("AutoRevert", "auto_revert"),
        _f("AutoPromote", "auto_promote"),
        _f("Canary", "canary"),
        _f("Stagger", "stagger"),
    ),
    "MigrateStrategy": (
        _f("MaxParallel", "max_parallel"),
        _f("HealthCheck", "health_check"),
        _f("MinHealthyTime", "min_healthy_time"),
        _f("HealthyDeadline", "healthy_deadline"),
    ),
    "ReschedulePolicy": (
        _f("Attempts", "attempts"),
        _f("Interval", "interval"),
        _f("Delay", "delay"),
        _f("DelayFunction", "delay_function"),
        _f("MaxDelay", "max_delay"),
        _f("Unlimited", "unlimited"),
    ),
    "RestartPolicy": (
        _f("Attempts", "attempts"),
        _f("Interval", "interval"),
        _f("Delay", "delay"),
        _f("Mode", "mode"),
        _f("RenderTemplates", "render_templates"),
    ),
    "EphemeralDisk": (
        _f("SizeMB", "size"),
        _f("Sticky", "sticky"),
        _f("Migrate", "migrate"),
    ),
    "DisconnectStrategy": (
        _f("LostAfter", "lost_after"),
        _f("StopOnClientAfter", "stop_on_client_after"),
        _f("Replace", "replace"),
        _f("Reconcile", "reconcile"),
    ),
    "NetworkResource": (
        _f("Mode", "mode", "attr_nonzero"),
        _f("Hostname", "hostname", "attr_nonzero"),
        _f("Device", "device", "attr_nonzero"),
        _f("CIDR", "cidr", "attr_nonzero"),
        _f("IP", "ip", "attr_nonzero"),
        _f("MBits", "mbits"),
        _f("DNS", "dns", "block", "DNSConfig"),
        _f("CNI", "cni", "block", "CNIConfig"),
        # jobspec2 reads every `port` block into DynamicPorts, then moves static ones
        _f("ReservedPorts", "port", "labelled_blocks", ("Port", "Label")),
        _f("DynamicPorts", "port", "labelled_blocks", ("Port", "Label")),
    ),
    "Port": (
        _f("Label", kind="label"),
        _f("Value", "static", "attr_nonzero"),
        _f("To", "to", "attr_nonzero"),
        _f("HostNetwork", "host_network", "attr_nonzero"),
        _f("IgnoreCollision", "ignore_collision", "attr_nonzero"),
    ),
    "DNSConfig": (
        _f("Servers", "servers"),
        _f("Searches", "searches"),
        _f("Options", "options"),
    ),
    "CNIConfig": (_f("Args", "args", "map_attr"),),
    "Service": (
        _f("Name", "name", "attr_nonzero"),
        _f("Provider", "provider", "attr_nonzero"),
        _f("PortLabel", "port", "attr_nonzero"),
        _f("Tags", "tags"),
        _f("CanaryTags", "canary_tags"),
        _f("AddressMode", "address_mode", "attr_nonzero"),
        _f("Address", "address", "attr_nonzero"),
        _f("TaskName", "task", "attr_nonzero"),
        _f("OnUpdate", "on_update", "attr_nonzero"),
        _f("EnableTagOverride", "enable_tag_override", "attr_nonzero"),
        _f("Kind", "kind", "attr_nonzero"),
        _f("Cluster", "cluster", "attr_nonzero"),
        _f("Meta", "meta", "string_map"),
        _f("CanaryMeta", "canary_meta", "string_map"),
        _f("TaggedAddresses", "tagged_addresses", "string_map"),
        _f("Weights", "weights", "block", "ServiceWeights"),
        _f("Identity", "identity", "block", "WorkloadIdentity"),
        _f("CheckRestart", "check_restart", "block", "CheckRestart"),
        _f("Checks", "check", "blocks", "ServiceCheck"),
        _f("Connect", "connect", "block", "ConsulConnect"),
    ),
    "ServiceCheck": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("Name", "name"),
            ("Type", "type"),
            ("Command", "command"),
            ("Args", "args"),
            ("Path", "path"),
            ("Protocol", "protocol"),
            ("Method", "method"),
            ("Body", "body"),
            ("PortLabel", "port"),
            ("Expose", "expose"),
            ("AddressMode", "address_mode"),
            ("Advertise", "advertise"),
            ("Interval", "interval"),
            ("Timeout", "timeout"),
            ("InitialStatus", "initial_status"),
            ("Notes", "notes"),
            ("TLSServerName", "tls_server_name"),
            ("TLSSkipVerify", "tls_skip_verify"),
            ("GRPCService", "grpc_service"),
            ("GRPCUseTLS", "grpc_use_tls"),
            ("TaskName", "task"),
            ("SuccessBeforePassing", "success_before_passing"),
            ("FailuresBeforeCritical", "failures_before_critical"),
            ("FailuresBeforeWarning", "failures_before_warning"),
            ("OnUpdate", "on_update"),
        )
    )
    + (
        _f("Header", "header", "string_map"),
        _f("CheckRestart", "check_restart", "block", "CheckRestart"),
    ),
    "CheckRestart": (
        _f("Limit", "limit", "attr_nonzero"),
        _f("Grace", "grace"),
        _f("IgnoreWarnings", "ignore_warnings", "attr_nonzero"),
    ),
    "ServiceWeights": (
        _f("Passing", "passing", "attr_nonzero"),
        _f("Warning", "warning", "attr_nonzero"),
    ),
    "ConsulConnect": (
        _f("Native", "native", "attr_nonzero"),
        _f("SidecarService", "sidecar_service", "block", "ConsulSidecarService"),
        _f("SidecarTask", "sidecar_task", "block", "SidecarTask"),
        _f("Gateway", "gateway", "block", "ConsulGateway"),
    ),
    "ConsulSidecarService": (
        _f("Port", "port", "attr_nonzero"),
        _f("Tags", "tags"),
        _f("DisableDefaultTCPCheck", "disable_default_tcp_check", "attr_nonzero"),
        _f("Meta", "meta", "string_map"),
        _f("Proxy", "proxy", "block", "ConsulProxy"),
    ),
    "SidecarTask": (
        _f("Name", "name", "attr_nonzero"),
        _f("Driver", "driver", "attr_nonzero"),
        _f("User", "user", "attr_nonzero"),
        _f("KillTimeout", "kill_timeout"),
        _f("KillSignal", "kill_signal", "attr_nonzero"),
        _f("ShutdownDelay", "shutdown_delay"),
        _f("Config", "config", "free_form"),
        _f("Env", "env", "string_map"),
        _f("Meta", "meta", "string_map"),
        _f("Resources", "resources", "block", "Resources"),
        _f("LogConfig", "logs", "block", "LogConfig"),
        _f("VolumeMounts", "volume_mount", "blocks", "VolumeMount"),
    ),
    "ConsulProxy": (
        _f("LocalServiceAddress", "local_service_address", "attr_nonzero"),
        _f("LocalServicePort", "local_service_port", "attr_nonzero"),
        _f("Upstreams", "upstreams", "blocks", "ConsulUpstream"),
        _f("Expose", "expose", "block", "ConsulExposeConfig"),
        _f("ExposeConfig", "expose", "alias", ("ConsulExposeConfig", "Expose")),
        _f("TransparentProxy", "transparent_proxy", "block", "ConsulTransparentProxy"),
        _f("Config", "config", "free_form"),
    ),
    "ConsulExposeConfig": (
        _f("Paths", "path", "blocks", "ConsulExposePath"),
        _f("Path", "path", "alias", ("ConsulExposePath", "Paths")),
    ),
    "ConsulExposePath": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("Path", "path"),
            ("Protocol", "protocol"),
            ("LocalPathPort", "local_path_port"),
            ("ListenerPort", "listener_port"),
        )
    ),
    "ConsulUpstream": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("DestinationName", "destination_name"),
            ("DestinationNamespace", "destination_namespace"),
            ("DestinationPeer", "destination_peer"),
            ("DestinationPartition", "destination_partition"),
            ("DestinationType", "destination_type"),
            ("Datacenter", "datacenter"),
            ("LocalBindAddress", "local_bind_address"),
            ("LocalBindPort", "local_bind_port"),
            ("LocalBindSocketPath", "local_bind_socket_path"),
            ("LocalBindSocketMode", "local_bind_socket_mode"),
        )
    )
    + (
        _f("MeshGateway", "mesh_gateway", "block", "ConsulMeshGateway"),
        _f("Config", "config", "free_form"),
    ),
    "ConsulMeshGateway": (_f("Mode", "mode", "attr_nonzero"),),
    "ConsulTransparentProxy": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("UID", "uid"),
            ("OutboundPort", "outbound_port"),
            ("ExcludeInboundPorts", "exclude_inbound_ports"),
            ("ExcludeOutboundPorts", "exclude_outbound_ports"),
            ("ExcludeOutboundCIDRs", "exclude_outbound_cidrs"),
            ("ExcludeUIDs", "exclude_uids"),
            ("NoDNS", "no_dns"),
        )
    ),
    "ConsulGateway": (
        _f("Proxy", "proxy", "block", "ConsulGatewayProxy"),
        _f("Ingress", "ingress", "block", "ConsulIngressConfigEntry"),
        _f("Terminating", "terminating", "block", "ConsulTerminatingConfigEntry"),
        _f("Mesh", "mesh", "block", "Empty"),
    ),
    "ConsulGatewayProxy": (
        _f("ConnectTimeout", "connect_timeout"),
        _f(
            "EnvoyGatewayBindTaggedAddresses", "envoy_gateway_bind_tagged_addresses", "attr_nonzero"
        ),
        _f("EnvoyGatewayNoDefaultBind", "envoy_gateway_no_default_bind", "attr_nonzero"),
        _f("EnvoyDNSDiscoveryType", "envoy_dns_discovery_type", "attr_nonzero"),
        _f(
            "EnvoyGatewayBindAddresses",
            "envoy_gateway_bind_addresses",
            "map_blocks",
            ("ConsulGatewayBindAddress", "Name"),
        ),
        _f("Config", "config", "free_form"),
    ),
    "ConsulGatewayBindAddress": (
        _f("Name", kind="label"),
        _f("Address", "address", "attr_nonzero"),
        _f("Port", "port", "attr_nonzero"),
    ),
    "ConsulIngressConfigEntry": (
        _f("TLS", "tls", "block", "ConsulGatewayTLSConfig"),
        _f("Listeners", "listener", "blocks", "ConsulIngressListener"),
    ),
    "ConsulGatewayTLSConfig": (
        _f("Enabled", "enabled", "attr_nonzero"),
        _f("TLSMinVersion", "tls_min_version", "attr_nonzero"),
        _f("TLSMaxVersion", "tls_max_version", "attr_nonzero"),
        _f("CipherSuites", "cipher_suites"),
    ),
    "ConsulIngressListener": (
        _f("Port", "port", "attr_nonzero"),
        _f("Protocol", "protocol", "attr_nonzero"),
        _f("Services", "service", "blocks", "ConsulIngressService"),
    ),
    "ConsulIngressService": (_f("Name", "name", "attr_nonzero"), _f("Hosts", "hosts")),
    "ConsulTerminatingConfigEntry": (_f("Services", "service", "blocks", "ConsulLinkedService"),),
    "ConsulLinkedService": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("Name", "name"),
            ("CAFile", "ca_file"),
            ("CertFile", "cert_file"),
            ("KeyFile", "key_file"),
            ("SNI", "sni"),
        )
    ),
    "Empty": (),
    "Template": (
        _f("SourcePath", "source"),
        _f("EmbeddedTmpl", "data"),
        _f("DestPath", "destination"),
        _f("Perms", "perms"),
        _f("Uid", "uid"),
        _f("Gid", "gid"),
        _f("Envvars", "env"),
        _f("ChangeMode", "change_mode"),
        _f("ChangeSignal", "change_signal"),
        _f("Splay", "splay"),
        _f("LeftDelim", "left_delimiter"),
        _f("RightDelim", "right_delimiter"),
        _f("ErrMissingKey", "error_on_missing_key"),
        _f("Once", "once"),
        _f("VaultGrace", "vault_grace"),
        _f("ChangeScript", "change_script", "block", "ChangeScript"),
        _f("Wait", "wait", "block", "WaitConfig"),
    ),
    "WaitConfig": (_f("Min", "min"), _f("Max", "max")),
    "ChangeScript": (
        _f("Command", "command"),
        _f("Args", "args"),
        _f("Timeout", "timeout"),
        _f("FailOnError", "fail_on_error"),
    ),
    "TaskLifecycle": (_f("Hook", "hook", "attr_nonzero"), _f("Sidecar", "sidecar", "attr_nonzero")),
    "Resources": (
        _f("CPU", "cpu"),
        _f("Cores", "cores"),
        _f("MemoryMB", "memory"),
        _f("MemoryMaxMB", "memory_max"),
        _f("DiskMB", "disk"),
        _f("IOPS", "iops"),
        _f("SecretsMB", "secrets"),
        _f("Networks", "network", "blocks", "NetworkResource"),
        _f("Devices", "device", "labelled_blocks", ("RequestedDevice", "Name")),
        _f("NUMA", "numa", "block", "NUMAResource"),
    ),
    "RequestedDevice": (
        _f("Name", kind="label"),
        _f("Count", "count"),
        _CONSTRAINTS,
        _AFFINITIES,
    ),
    "NUMAResource": (_f("Affinity", "affinity", "attr_nonzero"), _f("Devices", "devices")),
    "LogConfig": (
        _f("MaxFiles", "max_files"),
        _f("MaxFileSizeMB", "max_file_size"),
        _f("Disabled", "disabled"),
        _f("Enabled", "enabled"),
    ),
    "TaskArtifact": (
        _f("GetterSource", "source"),
        _f("RelativeDest", "destination"),
        _f("GetterMode", "mode"),
        _f("GetterInsecure", "insecure"),
        _f("Chown", "chown", "attr_nonzero"),
        _f("GetterOptions", "options", "string_map"),
        _f("GetterHeaders", "headers", "string_map"),
    ),
    "Vault": (
        _f("Role", "role", "attr_nonzero"),
        _f("Policies", "policies"),
        _f("Namespace", "namespace"),
        _f("Cluster", "cluster", "attr_nonzero"),
        _f("Env", "env"),
        _f("DisableFile", "disable_file"),
        _f("ChangeMode", "change_mode"),
        _f("ChangeSignal", "change_signal"),
        _f("AllowTokenExpiration", "allow_token_expiration"),
    ),
    "Consul": (
        _f("Namespace", "namespace", "attr_nonzero"),
        _f("Cluster", "cluster", "attr_nonzero"),
        _f("Partition", "partition", "attr_nonzero"),
    ),
    "WorkloadIdentity": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("Name", "name"),
            ("Audience", "aud"),
            ("Env", "env"),
            ("File", "file"),
            ("Filepath", "filepath"),
            ("ChangeMode", "change_mode"),
            ("ChangeSignal", "change_signal"),
            ("ServiceName", "service_name"),
            ("TTL", "ttl"),
        )
    ),
    "VolumeRequest": (
        _f("Name", kind="label"),
        _f("Type", "type", "attr_nonzero"),
        _f("Source", "source", "attr_nonzero"),
        _f("ReadOnly", "read_only", "attr_nonzero"),
        _f("AccessMode", "access_mode", "attr_nonzero"),
        _f("AttachmentMode", "attachment_mode", "attr_nonzero"),
        _f("PerAlloc", "per_alloc", "attr_nonzero"),
        _f("Sticky", "sticky", "attr_nonzero"),
        _f("MountOptions", "mount_options", "block", "CSIMountOptions"),
    ),
    "CSIMountOptions": (_f("FSType", "fs_type", "attr_nonzero"), _f("MountFlags", "mount_flags")),
    "VolumeMount": (
        _f("Volume", "volume"),
        _f("Destination", "destination"),
        _f("ReadOnly", "read_only"),
        _f("PropagationMode", "propagation_mode"),
        _f("SELinuxLabel", "selinux_label"),
    ),
    "DispatchPayloadConfig": (_f("File", "file", "attr_nonzero"),),
    "PeriodicConfig": (
        _f("Enabled", "enabled"),
        _f("Spec", "cron"),
        _f("Specs", "crons"),
        _f("SpecType", kind="implied", sub="cron"),
        _f("ProhibitOverlap", "prohibit_overlap"),
        _f("TimeZone", "time_zone"),
    ),
    "ParameterizedJobConfig": (
        _f("Payload", "payload", "attr_nonzero"),
        _f("MetaRequired", "meta_required"),
        _f("MetaOptional", "meta_optional"),
    ),
    "Multiregion": (
        _f("Strategy", "strategy", "block", "MultiregionStrategy"),
        _f("Regions", "region", "labelled_blocks", ("MultiregionRegion", "Name")),
    ),
    "MultiregionStrategy": (_f("MaxParallel", "max_parallel"), _f("OnFailure", "on_failure")),
    "MultiregionRegion": (
        _f("Name", kind="label"),
        _f("Count", "count"),
        _f("Datacenters", "datacenters"),
        _f("NodePool", "node_pool", "attr_nonzero"),
        _f("Meta", "meta", "string_map"),
    ),
    "JobUIConfig": (
        _f("Description", "description", "attr_nonzero"),
        _f("Links", "link", "blocks", "JobUILink"),
    ),
    "JobUILink": (_f("Label", "label", "attr_nonzero"), _f("URL", "url", "attr_nonzero")),
    "ScalingPolicy": (
        _f("Type", "type", "attr_nonzero"),
        _f("Enabled", "enabled"),
        _f("Min", "min"),
        _f("Max", "max"),
        _f("Policy", "policy", "free_form"),
    ),
    "Action": (_f("Name", kind="label"), _f("Command", "command"), _f("Args", "args")),
    "TaskSchedule": (_f("Cron", "cron", "block", "TaskScheduleCron"),),
    "TaskScheduleCron": (_f("Start", "start"), _f("End", "end"), _f("Timezone", "timezone")),
    "TaskCSIPluginConfig": tuple(
        _f(j, h, "attr_nonzero")
        for j, h in (
            ("ID", "id"),
            ("Type", "type"),
            ("MountDir", "mount_dir"),
            ("StagePublishBaseDir", "stage_publish_base_dir"),
            ("HealthTimeout", "health_timeout"),
        )
    ),
}

_TASK_SCALING_LABELS = {"vertical_cpu": "cpu", "vertical_mem": "mem"}

# ---------------------------------------------------------------------------------------------
# Scalars


# Identifiers that are safe as attribute names and object keys in both Go HCL and python-hcl2.
# Keywords are excluded: `{ for = 1 }` starts a for-expression, `null` cannot be a key.
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_KEYWORDS = frozenset({"true", "false", "null", "for", "in", "if", "else", "endif", "endfor"})
_SIMPLE_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ZWJ = "\u200d"  # part of emoji sequences; harmless, so kept literal


def _is_ident(key: object) -> bool:
    return isinstance(key, str) and _ident_str(key)


@lru_cache(maxsize=4096)
def _ident_str(key: str) -> bool:
    return bool(_IDENT_RE.fullmatch(key)) and key not in _KEYWORDS


def _char_escape(ch: str) -> str:
    simple = _SIMPLE_ESCAPES.get(ch)
    if simple is not None:
        return simple
    code = ord(ch)
    if code < 0x80:
        return f"\\u{code:04X}" if code < 0x20 or code == 0x7F else ch
    cat = unicodedata.category(ch)
    if cat == "Cs":
        raise RenderError(
            f"string contains a lone surrogate U+{code:04X}",
            hint="pass valid Unicode text; a lone surrogate cannot be encoded as UTF-8",
        )
    # Controls, bidi overrides, zero-width and line/paragraph separators are escaped so a
    # reader sees every character that is there.
    if cat in ("Cc", "Cf", "Zl", "Zp") and ch != _ZWJ:
        return f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"
    return ch


_PLAIN_RE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")  # printable ASCII but \\ and "


# Nomad runtime references that jobspec2 leaves as they are written (its evaluation context
# knows only `var` and `local`; any other root is kept as source text), in the plain form that
# reads the same in Nomad 1.5 through 1.10: `${node.datacenter}`, `${attr.kernel.name}`,
# `${meta.zone}`, `${device.model}`, `${NOMAD_PORT_http}`. Not: hyphenated names (Nomad 1.10
# reads `${meta.a-b}` as a subtraction), a `$` just before (`$${` is the escape), a `}` just
# after (1.5.8 doubles it). tests/test_nomad_proof.py proves each form with Nomad's parser.
RUNTIME_REF = re.compile(
    r"(?<!\$)\$\{(?:(?:node|attr|meta|device)(?:\.[A-Za-z_][A-Za-z0-9_]*)+|NOMAD_[A-Za-z0-9_]+)\}"
    r"(?! *\})"
)


def _template_escape(s: str) -> str:
    # Escaping never creates or splits a "${"/"%{" pair ($, % and { are kept verbatim),
    # so doubling them first is equivalent to doing it last.
    return s.replace("${", "$${").replace("%{", "%%{")


def _escape_template_text(s: str) -> str:
    """`${`/`%{` doubled, except the runtime references of a Runtime string."""
    if not isinstance(s, Runtime) or "${" not in s:
        return _template_escape(s)
    out, pos = [], 0
    for m in RUNTIME_REF.finditer(s):
        out += [_template_escape(s[pos : m.start()]), m.group(0)]
        pos = m.end()
    out.append(_template_escape(s[pos:]))
    return "".join(out)


def escape_string(s: str) -> str:
    """Return `s` as a quoted HCL string literal that evaluates to exactly `s`.

    Backslash, quote, newline, CR and tab get their short escapes; other control and
    invisible format characters become \\uXXXX; `${` and `%{` are doubled to `$${` and `%%{`,
    so no value can become a live interpolation or template directive. Other non-ASCII text
    is kept as UTF-8. In a `Runtime` string (text nomadgen writes, never a manifest value),
    Nomad runtime references (RUNTIME_REF) are written as they are: jobspec2 keeps them.
    """
    if not isinstance(s, str):
        raise RenderError(f"expected a string, got {type(s).__name__}: {s!r}")
    return _escape(s)


# Most strings in a job repeat across jobs (drivers, modes, labels): cached, by type as well,
# since a Runtime string and a plain one with the same text are written differently.
@lru_cache(maxsize=8192, typed=True)
def _escape(s: str) -> str:
    if "{" in s:
        s = _escape_template_text(s)
    if _PLAIN_RE.fullmatch(s):
        return '"' + s + '"'
    return '"' + _SPECIAL_RE.sub(_escape_match, s) + '"'


_SPECIAL_RE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")  # what _PLAIN_RE does not take


def _escape_match(m: re.Match[str]) -> str:
    return _char_escape(m.group())


_HEREDOC_TEXT_RE = re.compile(r"[^\x00-\x09\x0b-\x1f\x7f]*")


def _heredoc(s: str, lines_min: int = 2) -> list[str] | None:
    """A multi-line string (ending in a newline) as a heredoc, or None when it cannot be one
    exactly. `<<-EOT` when some line starts at column 0 (Nomad strips the common indent of
    the non-empty lines); `<<EOT` with the text at column 0 otherwise. Heredocs take no
    backslash escapes, so a string with characters that need one (tab, CR, invisible
    characters) stays quoted. Lines starting with "\x00" are written at column 0."""
    if s.count("\n") < lines_min or not s.endswith("\n") or not _HEREDOC_TEXT_RE.fullmatch(s):
        return None
    if not s.isascii() and any(_char_escape(ch) != ch for ch in s if ord(ch) >= 0x80):
        return None
    end = len(s) - 1  # the regexes below read s[:-1], without its last newline
    if _SPACES_LINE_RE.search(s, 0, end):
        return None  # whitespace-only lines: Nomad keeps them unstripped
    marker = "EOT"
    if marker in s:  # a line that is the marker (blanks around it aside) would end the text
        lines = s[:-1].split("\n")
        while any(line.strip() == marker for line in lines):
            marker += "X"
    text = _escape_template_text(s)[:-1].split("\n")
    if _FLUSH_LINE_RE.search(s, 0, end):  # some line starts at column 0
        return [f"<<-{marker}", *[f"  {t}" if t else "\x00" for t in text], marker]
    return [f"<<{marker}", *["\x00" + t for t in text], f"\x00{marker}"]


_SPACES_LINE_RE = re.compile(r"^ +$", re.M)
_FLUSH_LINE_RE = re.compile(r"^[^ \n]", re.M)


_NS_UNITS = (("h", 3_600_000_000_000), ("m", 60_000_000_000))
_SUB_SECOND_UNITS = (("ms", 1_000_000), ("us", 1_000), ("ns", 1))


def _decimal(whole: int, frac: int, scale: int) -> str:
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def format_duration(ns: int) -> str:
    """Integer nanoseconds as a Go duration string: 90000000000 -> "1m30s".

    Zero components are left out ("1h", "5m"), seconds may carry a decimal fraction
    ("1.5s"), durations under a second use ms/us/ns ("250ms"). time.ParseDuration reads
    all of these back to the same integer.
    """
    if isinstance(ns, bool) or not isinstance(ns, int):
        raise RenderError(f"a duration must be integer nanoseconds, got {ns!r}")
    if ns == 0:
        return "0s"
    if ns < 0:
        return "-" + format_duration(-ns)
    if ns < 1_000_000_000:
        for unit, size in _SUB_SECOND_UNITS:
            if ns >= size:
                return _decimal(ns // size, ns % size, size) + unit
    out = []
    rest = ns
    for unit, size in _NS_UNITS:
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    if rest:
        out.append(_decimal(rest // 1_000_000_000, rest % 1_000_000_000, 1_000_000_000) + "s")
    return "".join(out)


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return escape_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"{value!r} has no HCL (or JSON) form")
        return repr(value)
    raise RenderError(f"cannot write a {type(value).__name__} value: {value!r}")


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, bool, int, float))


# ---------------------------------------------------------------------------------------------
# Tree and layout
#
# The writer builds a small tree, then lays it out. Its nodes are plain tuples, for speed:
#   attribute  (False, name, value)   value: one line (str), or a list of lines where lines
#                                     after the first are relative to the attribute's indent
#                                     ("\x00" first: written at column 0, for heredocs)
#   block      (True, head, items)    head: the type and its quoted labels
_Item = tuple[bool, str, Any]


def _expr(value: object) -> str | list[str]:
    """Render a value as an HCL expression: one line, or lines after the first relative to
    its indent."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        rows: list[_Item] = []
        for key in sorted(value, key=str):
            if value[key] is None:
                continue
            name = key if _is_ident(key) else escape_string(str(key))
            rows.append((False, name, _expr(value[key])))
        lines = ["{"]
        _layout(rows, "  ", lines)
        lines.append("}")
        return lines
    if isinstance(value, (list, tuple)):
        if all([type(v) is str for v in value]):  # the common case: a list of strings
            return "[" + ", ".join([escape_string(v) for v in value]) + "]"
        if all(_is_scalar(v) for v in value):
            return "[" + ", ".join([_scalar(v) for v in value]) + "]"
        lines = ["["]
        for v in value:
            sub = _expr(v)
            if type(sub) is str:
                lines.append("  " + sub + ",")
            else:
                lines.extend(["  " + line for line in sub[:-1]])
                lines.append("  " + sub[-1] + ",")
        lines.append("]")
        return lines
    if value is None:
        raise RenderError("null inside a list has no HCL form")
    return _scalar(value)


def _flush(run: list[_Item], indent: str, out: list[str]) -> None:
    if len(run) == 1:
        out.append(f"{indent}{run[0][1]} = {run[0][2]}")
    else:
        width = max([len(a[1]) for a in run])
        out.extend([f"{indent}{a[1].ljust(width)} = {a[2]}" for a in run])
    run.clear()


def _layout(items: Sequence[_Item], indent: str, out: list[str]) -> None:
    """Lay out a body like `nomad fmt`: `=` aligned over each run of single-line attributes
    (a multi-line value ends the run, as in hclwrite), a blank line around blocks."""
    run: list[_Item] = []
    prev_block: bool | None = None
    for item in items:
        is_block, name, value = item
        if prev_block is not None and (is_block or prev_block):
            if run:
                _flush(run, indent, out)
            out.append("")
        prev_block = is_block
        if not is_block:
            if type(value) is str:
                run.append(item)
                continue
            if run:
                _flush(run, indent, out)
            out.append(f"{indent}{name} = {value[0]}")
            out.extend([line[1:] if line[:1] == "\x00" else indent + line for line in value[1:]])
        else:
            if run:
                _flush(run, indent, out)
            if value:
                out.append(f"{indent}{name} {{")
                _layout(value, indent + "  ", out)
                out.append(f"{indent}}}")
            else:
                out.append(f"{indent}{name} {{}}")
    if run:
        _flush(run, indent, out)


def _block(type_: str, labels: tuple[str, ...], items: list[_Item]) -> _Item:
    head = " ".join([type_, *[escape_string(label) for label in labels]]) if labels else type_
    return (True, head, items)


# ---------------------------------------------------------------------------------------------
# Table walk


def _empty(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, (list, tuple, dict)) and not value)


def _zero(value: object) -> bool:
    return value is False or (type(value) in (int, float) and value == 0)


def _qualified(name: str, parent: str, names: frozenset[str]) -> bool:
    return name in names or f"{parent}.{name}" in names


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _attr(name: str, hcl: str, value: object, parent: str) -> _Item:
    return _attr_item(
        hcl,
        value,
        _qualified(name, parent, DURATION_FIELDS),
        _qualified(name, parent, RUNTIME_FIELDS),
    )


def _attr_item(
    hcl: str, value: object, duration: bool, runtime: bool, template: bool = False
) -> _Item:
    if duration and not isinstance(value, str):
        return (False, hcl, escape_string(format_duration(value)))  # type: ignore[arg-type]
    if runtime and type(value) is str:
        value = Runtime(value)
    return (False, hcl, _value_lines(value, template))


def _value_lines(value: object, template: bool = False) -> str | list[str]:
    """An attribute's value: a heredoc for multi-line text (and for a template body of one
    line, so a reviewer reads the Go template without escaped quotes), else the expression."""
    if isinstance(value, str):
        if "\n" in value:
            doc = _heredoc(value, 1 if template else 2)
            if doc is not None:
                return doc
        return _escape(value)
    if value is True or value is False:
        return "true" if value else "false"
    if type(value) is int:
        return str(value)
    return _expr(value)


def _need_dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RenderError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _need_list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise RenderError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _string_map(hcl: str, value: object, where: str, force_attr: bool = False) -> _Item:
    mapping = {k: v for k, v in _need_dict(value, where).items() if v is not None}
    if force_attr or not all(_is_ident(k) for k in mapping):
        return (False, hcl, _expr(mapping))
    return (True, hcl, [(False, k, _value_lines(mapping[k])) for k in sorted(mapping)])


def _config_items(cfg: dict[str, Any], where: str) -> list[_Item]:
    """Free-form body (driver config and the like): keys kept as given, sorted, attributes
    first. Objects under CONFIG_BLOCK_NAMES become blocks (see there)."""
    attrs: list[_Item] = []
    blocks: list[_Item] = []
    for key in sorted(cfg, key=str):
        value = cfg[key]
        if _empty(value):
            continue
        if not _is_ident(key):
            raise RenderError(
                f"{where}: key {key!r} cannot be written in HCL",
                hint="config keys must be identifiers (letters, digits, '_' and '-')",
            )
        if key in LABELLED_CONFIG_BLOCK_NAMES and _labelled_shape(value):
            here = f"{where}.{key}"
            for obj in value:
                ((label, (body,)),) = obj.items()
                blocks.append(_block(key, (label,), _config_items(body, f"{here}.{label}")))
        elif key in CONFIG_BLOCK_NAMES and _blockable(value):
            here = f"{where}.{key}"
            objs = value if isinstance(value, list) else [value]
            blocks.extend([(True, key, _config_items(o, here)) for o in objs])
        elif isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            # Nomad reads `k = {...}` in a config body as [{...}]: write the familiar form.
            attrs.append((False, key, _expr(value[0])))
        else:
            attrs.append((False, key, _value_lines(value)))
    return attrs + blocks


def _blockable(value: object) -> bool:
    objs = value if isinstance(value, list) else [value]
    return all(isinstance(o, dict) and all(_is_ident(k) for k in o) for o in objs)


def _labelled_shape(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(o, dict)
        and len(o) == 1
        and all(isinstance(k, str) for k in o)
        and all(isinstance(v, list) and len(v) == 1 and _blockable(v[0]) for v in o.values())
        for o in value
    )


def _label(obj: dict[str, Any], field: str, where: str) -> str:
    label = obj.get(field, "")
    if label is None:
        label = ""
    if not isinstance(label, str):
        raise RenderError(f"{where}: {field} must be a string, got {label!r}")
    return label


# One spec read under one parent key, with the per-field name rules resolved once: JSON name
# -> (table position, json, hcl, kind, sub, skip, duration, runtime). Objects are sparse, so
# the walk looks up the keys an object has rather than every field of its table.
_CompiledField = tuple[int, str, str, str, Any, bool, bool, bool]
_COMPILED: dict[tuple[str, str], dict[str, _CompiledField]] = {}


def _compiled(spec: str, parent: str) -> dict[str, _CompiledField]:
    found = _COMPILED.get((spec, parent))
    if found is None:
        found = _COMPILED[(spec, parent)] = {
            name: (
                i,
                name,
                hcl,
                kind,
                sub,
                kind == "label" or _qualified(name, parent, READ_ONLY_FIELDS),
                _qualified(name, parent, DURATION_FIELDS),
                _qualified(name, parent, RUNTIME_FIELDS),
            )
            for i, (name, hcl, kind, sub) in enumerate(_SPECS[spec])
        }
    return found


# (spec, parent, the object's keys) -> (its fields in table order, keys the table lacks).
_SHAPES: dict[tuple[str, str, tuple[Any, ...]], tuple[list[_CompiledField], Any]] = {}


@lru_cache(maxsize=1024)
def _duration_text(ns: int) -> str:
    return escape_string(format_duration(ns))


# Blocks that are one object in every job (render shares identical blocks), written once:
# id -> (the object, {(field, indent): lines}). Set by to_hcl(..., shared=) for one call.
_shared: dict[int, tuple[object, dict[Any, list[str]]]] = {}


def _body(
    obj: dict[str, Any], spec: str, parent: str, where: str, indent: str, out: list[str]
) -> None:
    """Write `obj` as the body of a block, at `indent`, into `out`: attributes first (aligned
    like `nomad fmt`), then blocks, each group in table order, a blank line around blocks.
    Written straight to lines, without an intermediate tree: this is the HCL render's hot path."""
    shape = (spec, parent, tuple(obj))
    found = _SHAPES.get(shape)
    if found is None:  # the fields an object of this shape has, in table order, found once
        table = _compiled(spec, parent)
        keys = obj.keys()
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        found = _SHAPES[shape] = (
            sorted([table[k] for k in keys & table.keys() if not table[k][5]]),  # not skipped
            () if keys <= table.keys() else [k for k in keys if k not in table],
        )
    present, unknown = found
    attrs: list[tuple[str, str | list[str]]] = []
    slow = False  # an attribute not from a fast path below (its value may be several lines)
    blocks: list[tuple[Any, ...]] = []  # (field, value), or (None, tree item) for a prebuilt block
    for field in present:
        _, name, hcl, kind, sub, _skip, duration, runtime = field
        value = obj[name]
        if value is None:
            continue
        # Fast paths for the one-line attributes most fields are; anything else falls through.
        t = type(value)
        if kind == "attr" or kind == "attr_nonzero":
            if t is str:
                if not runtime and "\n" not in value:
                    if value or kind == "attr":
                        attrs.append((hcl, _escape(value)))
                    continue
            elif t is int:
                if not value and kind == "attr_nonzero":
                    continue
                attrs.append((hcl, _duration_text(value) if duration else int.__repr__(value)))
                continue
            elif t is bool and not duration:
                if value or kind == "attr":
                    attrs.append((hcl, "true" if value else "false"))
                continue
            elif t is list and not duration and all([type(x) is str for x in value]):
                if value:  # as _expr writes a list of strings
                    attrs.append((hcl, "[" + ", ".join([_escape(x) for x in value]) + "]"))
                continue
        # "" is a value for a pointer field (Nomad's default replaces only an absent one).
        if not value and (
            (value == "" and kind != "attr") or isinstance(value, (list, tuple, dict))
        ):
            continue
        if kind == "attr" or kind == "attr_nonzero":
            if kind == "attr_nonzero" and _zero(value):
                continue
            mark = len(attrs)
            if t is str and not runtime and "\n" not in value:
                attrs.append((hcl, escape_string(value)))
            elif t is int and not duration:
                attrs.append((hcl, int.__repr__(value)))
            elif t is int:
                attrs.append((hcl, _duration_text(value)))
            elif t is bool and not duration:
                attrs.append((hcl, "true" if value else "false"))
            else:
                attrs.append(
                    _attr_item(
                        hcl, value, duration, runtime, spec == "Template" and name == "EmbeddedTmpl"
                    )[1:]
                )
            if len(attrs) > mark and type(attrs[-1][1]) is not str:
                slow = True
        elif kind == "string_map" or kind == "map_attr":
            mapping = {
                k: v for k, v in _need_dict(value, f"{where}.{name}").items() if v is not None
            }
            if kind == "map_attr" or not all(_is_ident(k) for k in mapping):
                slow = True
                attrs.append((hcl, _expr(mapping)))
            else:
                blocks.append((None, (hcl, mapping)))
        elif kind == "implied":
            if value != sub:
                raise RenderError(f"{where}.{name} = {value!r} has no HCL form (only {sub!r} does)")
        else:
            blocks.append((field, value))
    for name in sorted(unknown):
        for item in _unknown(name, obj[name], parent, f"{where}.{name}"):
            if item[0]:
                blocks.append((None, item))
            else:
                slow = True
                attrs.append(item[1:])

    start = len(out)
    if attrs:
        if slow:
            _write_attrs(attrs, indent, out)
        elif len(attrs) == 1:
            out.append(f"{indent}{attrs[0][0]} = {attrs[0][1]}")
        else:  # one run of one-line values, `=` aligned
            width = max([len(a[0]) for a in attrs])
            out.extend([f"{indent}{n.ljust(width)} = {v}" for n, v in attrs])
    # Every block below is written with a blank line before it; the first one's goes again
    # at the end when no attribute stands before it.

    for field, value in blocks:
        if field is None:
            if type(value[0]) is bool:  # a prebuilt tree item
                out.append("")
                _layout([value], indent, out)
            else:  # a string map as a block: `env { NAME = "value" }`
                _map_block(value[0], value[1], indent, out)
            continue
        shared = _shared.get(id(value)) if _shared else None
        if shared is None or shared[0] is not value or field[3] == "alias":
            if _memo is not None and field[1] in _MEMO_FIELDS:
                _memo_group(obj, field, value, where, indent, out)
            else:
                _group(obj, field, value, where, indent, out)
            continue
        # The same object in every job (render shares identical blocks): written once.
        key = (id(field), indent)
        lines = shared[1].get(key)
        if lines is None:
            mark = len(out)
            _group(obj, field, value, where, indent, out)
            shared[1][key] = out[mark:]
        else:
            out.extend(lines)
    if not attrs and len(out) > start:
        del out[start]  # the blank line before the first block


# Blocks whose content repeats across the jobs nomadgen writes (one per service type): their
# lines are kept by content, (field, indent, content) -> lines, for one render of many jobs
# (to_hcl(..., memo=), pipeline.iter_files).
_MEMO_FIELDS = frozenset({"Resources", "EphemeralDisk", "Networks", "Config"})
_memo: dict[tuple[int, str, Any], list[str]] | None = None


def _freeze(v: object) -> object:
    """A hashable key that is equal only for values written alike (a bool is not 1, a Runtime
    string is not a plain one); TypeError for anything else."""
    t = type(v)
    if t is str or t is int:
        return v
    if t is dict:
        items = []
        for k, x in v.items():  # type: ignore[attr-defined]
            if type(k) is not str:
                raise TypeError(k)
            tx = type(x)  # str and int leaves kept as they are, without a call
            items.append((k, x if tx is str or tx is int else _freeze(x)))
        return (dict, tuple(items))
    if t is list:
        return (
            list,
            tuple([x if type(x) is str or type(x) is int else _freeze(x) for x in v]),  # type: ignore[attr-defined]
        )
    if t is bool or v is None:
        return (t, v)
    raise TypeError(t)


def _memo_group(
    obj: dict[str, Any],
    field: tuple[Any, ...],
    value: object,
    where: str,
    indent: str,
    out: list[str],
) -> None:
    try:
        key = (id(field), indent, _freeze(value))
    except TypeError:
        _group(obj, field, value, where, indent, out)
        return
    assert _memo is not None
    lines = _memo.get(key)
    if lines is None:
        mark = len(out)
        _group(obj, field, value, where, indent, out)
        if len(_memo) > 4096:  # bounded: a render of unlike jobs only stops gaining
            _memo.clear()
        _memo[key] = out[mark:]
    else:
        out.extend(lines)


def _group(
    obj: dict[str, Any],
    field: tuple[Any, ...],
    value: object,
    where: str,
    indent: str,
    out: list[str],
) -> None:
    """The blocks of one field of `obj` (a block, repeated or labelled blocks, a config)."""
    _, name, hcl, kind, sub, _skip, _duration, _runtime = field
    here = f"{where}.{name}"
    if kind == "block" or kind == "blocks":  # _block_lines, inline: the most common blocks
        inner = indent + "  "
        opening = f"{indent}{hcl} {{"
        for i, v in enumerate([value] if kind == "block" else _need_list(value, here)):
            if v is not None:
                at = here if kind == "block" else f"{here}[{i}]"
                out.append("")
                out.append(opening)
                _body(_need_dict(v, at), sub, name, at, inner, out)
                if out[-1] is opening:
                    out[-1] = opening + "}"
                else:
                    out.append(indent + "}")
    elif kind == "alias":
        sub_spec, primary = sub
        if _empty(obj.get(primary)):  # read it as the field it stands for
            for i, v in enumerate(value if isinstance(value, list) else [value]):
                if v is not None:
                    at = f"{here}[{i}]"
                    _block_lines(hcl, _need_dict(v, at), sub_spec, primary, at, indent, out)
    elif kind == "labelled_blocks":
        sub_spec, label_field = sub
        for i, v in enumerate(_need_list(value, here)):
            if v is not None:
                at = f"{here}[{i}]"
                v = _need_dict(v, at)
                head = f"{hcl} {escape_string(_label(v, label_field, at))}"
                _block_lines(head, v, sub_spec, name, at, indent, out)
    elif kind == "map_blocks":
        sub_spec, _ = sub  # the label field is the map key
        mapping = _need_dict(value, here)
        for key in sorted(mapping):
            if mapping[key] is not None:
                at = f"{here}[{key!r}]"
                head = f"{hcl} {escape_string(str(key))}"
                _block_lines(head, _need_dict(mapping[key], at), sub_spec, name, at, indent, out)
    elif kind == "free_form":
        out.append("")
        _layout([(True, hcl, _config_items(_need_dict(value, here), here))], indent, out)
    elif kind == "task_scaling":
        for i, v in enumerate(_need_list(value, here)):
            at = f"{here}[{i}]"
            v = dict(_need_dict(v, at))
            label = _TASK_SCALING_LABELS.get(v.pop("Type", None) or "")
            if label is None:
                raise RenderError(f"{at}: task scaling Type must be vertical_cpu or vertical_mem")
            _block_lines(f"{hcl} {escape_string(label)}", v, sub, name, at, indent, out)
    else:  # pragma: no cover - table typo
        raise AssertionError(f"unknown kind {kind!r} in {name} ({hcl})")


def _map_block(hcl: str, mapping: dict[str, Any], indent: str, out: list[str]) -> None:
    out.append("")
    if not mapping:
        out.append(f"{indent}{hcl} {{}}")
        return
    out.append(f"{indent}{hcl} {{")
    inner = indent + "  "
    attrs = [
        (k, _escape(v) if type(v) is str and "\n" not in v else _value_lines(v))
        for k, v in sorted(mapping.items())
    ]
    if len(attrs) == 1 and type(attrs[0][1]) is str:
        out.append(f"{inner}{attrs[0][0]} = {attrs[0][1]}")
    else:
        _write_attrs(attrs, inner, out)
    out.append(indent + "}")


def _block_lines(
    head: str, obj: dict[str, Any], spec: str, parent: str, where: str, indent: str, out: list[str]
) -> None:
    """A blank line, then `head { ... }` (or `head {}` when the body is empty)."""
    out.append("")
    opening = f"{indent}{head} {{"
    out.append(opening)
    _body(obj, spec, parent, where, indent + "  ", out)
    if out[-1] is opening:
        out[-1] = opening + "}"
    else:
        out.append(indent + "}")


def _write_attrs(attrs: list[tuple[str, str | list[str]]], indent: str, out: list[str]) -> None:
    if attrs and all(
        [type(v) is str for _, v in attrs]
    ):  # the common case: one run of one-line values
        width = max([len(n) for n, _ in attrs])
        out.extend([f"{indent}{n.ljust(width)} = {v}" for n, v in attrs])
        return
    run: list[tuple[str, str]] = []
    for name, value in attrs:
        if type(value) is str:
            run.append((name, value))
            continue
        if run:
            _flush_attrs(run, indent, out)
        out.append(f"{indent}{name} = {value[0]}")
        out.extend([line[1:] if line[:1] == "\x00" else indent + line for line in value[1:]])
    if run:
        _flush_attrs(run, indent, out)


def _flush_attrs(run: list[tuple[str, str]], indent: str, out: list[str]) -> None:
    if len(run) == 1:
        out.append(f"{indent}{run[0][0]} = {run[0][1]}")
    else:
        width = max([len(n) for n, _ in run])
        out.extend([f"{indent}{n.ljust(width)} = {v}" for n, v in run])
    run.clear()


def _unknown(name: str, value: object, parent: str, where: str) -> list[_Item]:
    """A field the table does not know: written under its snake_case name, best effort."""
    if _empty(value) or _qualified(name, parent, READ_ONLY_FIELDS) or not isinstance(name, str):
        return []
    hcl = _snake(name)
    if isinstance(value, dict):
        return [(True, hcl, _generic_items(value, name, where))]
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return [(True, hcl, _generic_items(v, name, where)) for v in value]
    return [_attr(name, hcl, value, parent)]


def _generic_items(obj: dict[str, Any], parent: str, where: str) -> list[_Item]:
    items: list[_Item] = []
    for name in sorted(obj, key=str):
        items.extend(_unknown(name, obj[name], parent, f"{where}.{name}"))
    return [i for i in items if not i[0]] + [i for i in items if i[0]]


def to_hcl(
    job: dict[str, Any],
    shared: dict[int, tuple[object, dict[Any, list[str]]]] | None = None,
    memo: dict[Any, list[str]] | None = None,
) -> str:
    """Render the bare Job dict (not `{"Job": ...}`) as an HCL2 jobspec.

    Same input, same bytes: field order comes from the table, maps are sorted by key.
    Raises RenderError for values HCL cannot carry (e.g. a non-identifier driver-config key).
    `shared` (id -> (object, {})) names objects that many jobs hold (see
    pipeline.render_files): their lines are written once and reused. It must pin its objects.
    `memo` (a dict kept for one render of many jobs): blocks in _MEMO_FIELDS written once per
    content.
    """
    if not isinstance(job, dict):
        raise RenderError(f"a job must be an object, got {type(job).__name__}")
    if set(job) == {"Job"}:
        raise RenderError(
            "to_hcl takes the bare Job object", hint='pass body["Job"], not the request body'
        )
    job_id = job.get("ID")
    if not isinstance(job_id, str) or not job_id:
        raise RenderError("the job has no ID", hint="set Job.ID; it becomes the job label")
    body = dict(job)
    if body.get("Name") == job_id:
        del body["Name"]  # jobspec2 defaults Name to the label
    global _shared, _memo
    out: list[str] = []
    _shared = shared or {}
    _memo = memo
    try:
        _block_lines(f"job {escape_string(job_id)}", body, "Job", "Job", "Job", "", out)
    finally:
        _shared = {}
        _memo = None
    out.append("")
    return "\n".join(out[1:])
