"""Which Nomad release has each field newer than 1.5: a job for an older target is told which
fields that release lacks (FIELD_SINCE, newer_fields)."""

from __future__ import annotations

from typing import Any

OLDEST_NOMAD = (1, 5)  # the oldest Nomad nomadgen's output supports

# The first Nomad release whose api.Job has each field newer than 1.5 ("Component.Field"),
# read from hashicorp/nomad's release tags (the first vX.Y.0 whose api/*.go declares it;
# (2, 0) where no 1.x api struct has it), less those a 1.5 patch release added (1.5.8 knows
# LogConfig.Enabled/Disabled and the sidecar service's Meta). A component new in that
# release is covered by the field that holds it. Nomad 1.5.8's parser rejects these and its
# decoder drops them (tests/test_versions.py proves it for each).
FIELD_SINCE: dict[str, tuple[int, int]] = {
    "Job.NodePool": (1, 6),
    "Job.UI": (1, 8),
    "Job.VersionTag": (1, 9),
    "PeriodicConfig.Specs": (1, 7),
    "TaskGroup.Disconnect": (1, 8),
    "TaskGroup.PreventRescheduleOnLost": (1, 8),
    "Consul.Cluster": (1, 7),
    "Consul.Partition": (1, 8),
    "Task.Identities": (1, 7),
    "Task.Actions": (1, 7),
    "Task.Consul": (1, 7),
    "Task.Schedule": (1, 8),
    "WorkloadIdentity.Name": (1, 7),
    "WorkloadIdentity.Audience": (1, 7),
    "WorkloadIdentity.ChangeMode": (1, 7),
    "WorkloadIdentity.ChangeSignal": (1, 7),
    "WorkloadIdentity.Filepath": (1, 9),
    "WorkloadIdentity.ServiceName": (1, 7),
    "WorkloadIdentity.TTL": (1, 7),
    "WorkloadIdentity.ExtraClaims": (2, 0),
    "Resources.NUMA": (1, 7),
    "Resources.SecretsMB": (1, 9),
    "RestartPolicy.RenderTemplates": (1, 7),
    "Template.Once": (2, 0),
    "Vault.Role": (1, 7),
    "Vault.Cluster": (1, 7),
    "Vault.AllowTokenExpiration": (1, 8),
    "Vault.DisableFile": (1, 6),
    "VolumeMount.SELinuxLabel": (1, 8),
    "VolumeRequest.Sticky": (1, 10),
    "TaskArtifact.Chown": (1, 10),
    "TaskArtifact.GetterInsecure": (1, 8),
    "NetworkResource.CNI": (1, 9),
    "Port.IgnoreCollision": (1, 9),
    "Service.Weights": (1, 10),
    "Service.Identity": (1, 7),
    "Service.Cluster": (1, 7),
    "Service.Kind": (2, 0),
    "Service.Namespace": (2, 0),
    "ServiceCheck.Notes": (1, 9),
    "ServiceCheck.TLSServerName": (1, 6),
    "ServiceCheck.FailuresBeforeWarning": (1, 8),
    "ConsulProxy.TransparentProxy": (1, 8),
    "ConsulUpstream.LocalBindSocketPath": (1, 7),
    "ConsulUpstream.LocalBindSocketMode": (1, 7),
    "ConsulUpstream.DestinationPeer": (1, 7),
    "ConsulUpstream.DestinationPartition": (1, 8),
    "ConsulUpstream.DestinationType": (1, 7),
    "SidecarTask.VolumeMounts": (1, 8),
    "SidecarTask.Identities": (2, 0),
    "ConsulIngressService.TLS": (1, 8),
    "ConsulIngressService.RequestHeaders": (1, 8),
    "ConsulIngressService.ResponseHeaders": (1, 8),
    "ConsulIngressService.MaxConnections": (1, 8),
    "ConsulIngressService.MaxPendingRequests": (1, 8),
    "ConsulIngressService.MaxConcurrentRequests": (1, 8),
    "ConsulGatewayTLSConfig.SDS": (1, 8),
}

# JSON key -> the component below it, for the walk of newer_fields (maps: "{Component}").
_COMPONENT_OF = {
    "TaskGroups": "TaskGroup",
    "Tasks": "Task",
    "Services": "Service",
    "Checks": "ServiceCheck",
    "Resources": "Resources",
    "Networks": "NetworkResource",
    "DynamicPorts": "Port",
    "ReservedPorts": "Port",
    "Templates": "Template",
    "Vault": "Vault",
    "Consul": "Consul",
    "VolumeMounts": "VolumeMount",
    "Volumes": "{VolumeRequest}",
    "Artifacts": "TaskArtifact",
    "LogConfig": "LogConfig",
    "RestartPolicy": "RestartPolicy",
    "Periodic": "PeriodicConfig",
    "Identity": "WorkloadIdentity",
    "Identities": "WorkloadIdentity",
    "Connect": "ConsulConnect",
    "SidecarService": "ConsulSidecarService",
    "Proxy": "ConsulProxy",
    "Upstreams": "ConsulUpstream",
    "SidecarTask": "SidecarTask",
    "Gateway": "ConsulGateway",
    "Ingress": "ConsulIngressConfigEntry",
    "Listeners": "ConsulIngressListener",
    "TLS": "ConsulGatewayTLSConfig",
}
_COMPONENT_UNDER = {("ConsulIngressListener", "Services"): "ConsulIngressService"}


def newer_fields(job: Any, nomad_version: tuple[int, int]) -> list[str]:
    """Fields of `job` that Nomad `nomad_version` does not have: "Job.NodePool: needs Nomad
    1.6, ..." (FIELD_SINCE)."""
    out: list[str] = []

    def walk(obj: Any, comp: str, path: str) -> None:
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                walk(item, comp, f"{path}[{i}]")
            return
        if not isinstance(obj, dict):
            return
        if comp.startswith("{"):
            for k, item in obj.items():
                walk(item, comp[1:-1], f"{path}.{k}")
            return
        for key, value in obj.items():
            if value is None:
                continue
            since = FIELD_SINCE.get(f"{comp}.{key}")
            if since is not None and since > nomad_version:
                out.append(
                    f"{path}.{key}: needs Nomad {since[0]}.{since[1]}; the target is "
                    f"Nomad {nomad_version[0]}.{nomad_version[1]}"
                )
            sub = _COMPONENT_UNDER.get((comp, key)) or _COMPONENT_OF.get(key)
            if sub is not None:
                walk(value, sub, f"{path}.{key}")

    walk(job, "Job", "Job")
    return out
