"""nomad_jobcheck: every rule proven by a known-bad job, real Nomad jobs and a good base job pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import nomad_jobcheck as jobcheck
import pytest
from nomad_jobcheck import check_job, nomad_error_text, schema_available
from nomad_jobcheck.jobspec import shared_dir

S = 1_000_000_000


def _shared_nomad() -> Path:
    return shared_dir() / "nomad"


SHARED = _shared_nomad()
HAVE_SCHEMA = (SHARED / "openapi.yaml").is_file()
needs_schema = pytest.mark.skipif(
    not HAVE_SCHEMA, reason=f"Nomad's OpenAPI spec not found at {SHARED} (set NOMADGEN_SHARED)"
)
needs_examples = pytest.mark.skipif(
    not (SHARED / "examples").is_dir(),
    reason=f"Nomad example jobs not found at {SHARED}/examples (set NOMADGEN_SHARED)",
)


def base_job() -> dict:
    return {
        "ID": "web",
        "Name": "web",
        "Type": "service",
        "Datacenters": ["dc1"],
        "Meta": {"owner": "team-a"},
        "Update": {
            "MaxParallel": 1,
            "HealthCheck": "checks",
            "MinHealthyTime": 10 * S,
            "HealthyDeadline": 300 * S,
            "ProgressDeadline": 600 * S,
            "AutoRevert": True,
        },
        "TaskGroups": [
            {
                "Name": "app",
                "Count": 3,
                "Constraints": [
                    {"LTarget": "${meta.zone}", "Operand": "distinct_property", "RTarget": "2"}
                ],
                "Spreads": [
                    {
                        "Attribute": "${meta.zone}",
                        "Weight": 100,
                        "SpreadTarget": [
                            {"Value": "z1", "Percent": 50},
                            {"Value": "z2", "Percent": 50},
                        ],
                    }
                ],
                "Networks": [
                    {"Mode": "host", "DynamicPorts": [{"Label": "http", "Value": 0, "To": 8080}]}
                ],
                "Services": [
                    {
                        "Name": "web-api",
                        "PortLabel": "http",
                        "Provider": "consul",
                        "Tags": ["v1"],
                        "Checks": [
                            {"Name": "alive", "Type": "tcp", "Interval": 10 * S, "Timeout": 2 * S},
                            {
                                "Name": "ready",
                                "Type": "http",
                                "Path": "/health",
                                "Interval": 10 * S,
                                "Timeout": 2 * S,
                            },
                        ],
                    }
                ],
                "Tasks": [
                    {
                        "Name": "app",
                        "Driver": "docker",
                        "Config": {"image": "example/app:1.2.3", "ports": ["http"]},
                        "Env": {"LOG_LEVEL": "info"},
                        "Templates": [
                            {
                                "EmbeddedTmpl": 'DB_URL={{ key "app/db" }}\n',
                                "DestPath": "secrets/app.env",
                                "Envvars": True,
                                "ChangeMode": "restart",
                            }
                        ],
                        "Resources": {"CPU": 200, "MemoryMB": 256},
                    }
                ],
            }
        ],
    }


# --------------------------------------------------------------------------- mutation helpers

G = "TaskGroups.0"
T = f"{G}.Tasks.0"
SV = f"{G}.Services.0"
TCP = f"{SV}.Checks.0"
HTTP = f"{SV}.Checks.1"
TM = f"{T}.Templates.0"
SP = f"{G}.Spreads.0"
CN = f"{G}.Constraints.0"


def _nav(obj, path: str):
    for part in path.split(".") if path else ():
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def setp(path: str, value):
    def mutate(job):
        parent, _, key = path.rpartition(".")
        target = _nav(job, parent)
        if isinstance(target, list):
            target[int(key)] = value
        else:
            target[key] = value

    return mutate


def delp(path: str):
    def mutate(job):
        parent, _, key = path.rpartition(".")
        target = _nav(job, parent)
        del target[int(key) if isinstance(target, list) else key]

    return mutate


def addp(path: str, item):
    """Append item to the list at path (created if missing)."""

    def mutate(job):
        parent, _, key = path.rpartition(".")
        _nav(job, parent).setdefault(key, []).append(copy.deepcopy(item))

    return mutate


def chain(*mutations):
    def mutate(job):
        for m in mutations:
            m(job)

    return mutate


def dup(path: str):
    """Append a copy of the list item at path to its own list."""

    def mutate(job):
        parent, _, idx = path.rpartition(".")
        items = _nav(job, parent)
        items.append(copy.deepcopy(items[int(idx)]))

    return mutate


to_system = chain(setp("Type", "system"), setp(f"{G}.Count", 1), delp(f"{G}.Spreads"))
to_batch = chain(setp("Type", "batch"), delp("Update"))
nomad_provider = setp(f"{SV}.Provider", "nomad")
task_service = {"Name": "app-metrics", "PortLabel": "http", "Provider": "consul"}


def mutated(mutation) -> dict:
    job = base_job()
    mutation(job)
    return job


# --------------------------------------------------------------------------- real jobs pass


@needs_examples
@pytest.mark.parametrize("name", ["example-short.json", "json-jobs-doc-example.json"])
def test_real_nomad_jobs_pass(name):
    doc = json.loads((SHARED / "examples" / name).read_text())
    job = doc["Job"] if set(doc) == {"Job"} else doc
    assert check_job(job) == []


@needs_examples
def test_a_batch_job_read_back_is_refused_like_nomad_1_5_refuses_it():
    # The server's read response of a batch job carries a job-level update block, which
    # api.TaskGroup.Canonicalize copies into the group; 1.5.8's Validate refuses it
    # (nomad-jobspec validate says the same, see test_jobcheck_vs_nomad).
    doc = json.loads((SHARED / "examples" / "job-read-response.json").read_text())
    assert check_job(doc["Job"] if set(doc) == {"Job"} else doc) == [
        'Task group cache validation failed: Job type "batch" does not allow update block'
    ]


@needs_schema
def test_schema_is_found_and_compiled():
    assert schema_available()
    assert jobcheck.openapi_path() == SHARED / "openapi.yaml"


def test_base_job_passes():
    assert check_job(base_job()) == []


GOOD_VARIANTS = [
    pytest.param(lambda job: None, id="unchanged"),
    pytest.param(delp(f"{SP}.Weight"), id="spread-weight-defaults-to-50"),
    pytest.param(delp(f"{SP}.SpreadTarget"), id="spread-without-targets"),
    pytest.param(setp(f"{T}.Lifecycle", {"Sidecar": True}), id="lifecycle-without-hook-is-dropped"),
    pytest.param(
        chain(setp(f"{TM}.Envvars", False), setp(f"{TM}.ChangeMode", "signal")),
        id="template-signal-defaults-to-sighup",
    ),
    pytest.param(setp("Priority", 100), id="priority-100"),
    pytest.param(delp("Datacenters"), id="datacenters-default-to-star"),
    pytest.param(setp("Datacenters", ["dc*", "*"]), id="datacenter-globs"),
    pytest.param(setp(f"{SV}.Name", "web-${NOMAD_META_color}"), id="service-name-interpolated"),
    pytest.param(setp(f"{SV}.Name", "${JOB}-${TASKGROUP}"), id="service-name-job-group"),
    pytest.param(delp(f"{SV}.Name"), id="service-name-defaulted"),
    pytest.param(
        addp(f"{G}.Constraints", {"Operand": "distinct_hosts", "RTarget": "true"}),
        id="distinct-hosts-without-ltarget",
    ),
    pytest.param(
        addp(f"{G}.Constraints", {"LTarget": "${meta.ssd}", "Operand": "is_set"}),
        id="is-set-without-rtarget",
    ),
    pytest.param(setp(f"{CN}.RTarget", None), id="distinct-property-count-defaults-to-1"),
    pytest.param(
        addp(
            "TaskGroups.0.Constraints",
            {"LTarget": "${attr.os.version}", "Operand": "regexp", "RTarget": r"^2[0-9]\.\d+\z"},
        ),
        id="re2-only-syntax",
    ),
    pytest.param(
        addp(
            f"{T}.Constraints",
            {
                "LTarget": "${attr.driver.docker.version}",
                "Operand": "version",
                "RTarget": ">= 1.2, < 2",
            },
        ),
        id="version-constraint",
    ),
    pytest.param(
        setp(
            "Affinities",
            [{"LTarget": "${node.datacenter}", "Operand": "=", "RTarget": "dc1", "Weight": -50}],
        ),
        id="negative-affinity",
    ),
    pytest.param(setp(f"{TM}.ChangeMode", "noop"), id="env-template-noop"),
    pytest.param(
        chain(
            setp(f"{TM}.Envvars", False),
            setp(f"{TM}.ChangeMode", "signal"),
            setp(f"{TM}.ChangeSignal", "SIGHUP"),
        ),
        id="template-signal",
    ),
    pytest.param(
        chain(
            setp(f"{TM}.ChangeMode", "script"),
            setp(f"{TM}.ChangeScript", {"Command": "/bin/reload", "Timeout": 5 * S}),
        ),
        id="template-script",
    ),
    pytest.param(chain(nomad_provider, delp(f"{TCP}.Name")), id="nomad-provider-http-tcp"),
    pytest.param(setp(f"{SV}.PortLabel", "8080"), id="numeric-group-service-port"),
    pytest.param(addp(f"{T}.Services", task_service), id="task-service-on-group-port"),
    pytest.param(to_system, id="system-job"),
    pytest.param(to_batch, id="batch-job"),
    pytest.param(
        chain(to_batch, setp("Periodic", {"Spec": "*/5 * * * *", "ProhibitOverlap": True})),
        id="periodic-batch",
    ),
    pytest.param(setp(f"{T}.Resources", {"Cores": 2, "MemoryMB": 512}), id="cores-instead-of-cpu"),
    pytest.param(delp(f"{T}.Resources"), id="resources-defaulted"),
    pytest.param(
        addp(
            f"{G}.Tasks",
            {
                "Name": "cache",
                "Driver": "docker",
                "Lifecycle": {"Hook": "prestart", "Sidecar": True},
                "Config": {"image": "memcached:1.6"},
                "Resources": {"CPU": 100, "MemoryMB": 128},
            },
        ),
        id="prestart-sidecar",
    ),
    pytest.param(
        chain(
            setp("Constraints", None),
            setp("Affinities", None),
            setp("Spreads", None),
            setp("Region", None),
            setp(f"{G}.Meta", None),
            setp(f"{T}.User", ""),
        ),
        id="nulls-mean-absent",
    ),
    pytest.param(
        chain(
            setp("NodePool", "default"),
            setp("UI", {"Description": "web", "Links": [{"Label": "docs", "URL": "https://x"}]}),
            setp(
                f"{G}.Disconnect", {"LostAfter": 60 * S, "Replace": True, "Reconcile": "best_score"}
            ),
            setp(f"{T}.Identity", {"Env": True, "File": False}),
            setp(
                f"{T}.Identities",
                [{"Name": "vault_default", "Audience": ["vault.io"], "TTL": 3600 * S}],
            ),
            setp(f"{T}.Actions", [{"Name": "flush", "Command": "/bin/flush", "Args": []}]),
            setp(f"{T}.Consul", {"Cluster": "default"}),
            setp(f"{TM}.ErrMissingKey", True),
            setp(f"{TCP}.Notes", "tcp probe"),
        ),
        id="post-1.4-fields",
    ),
    pytest.param(
        setp(
            f"{G}.RestartPolicy",
            {"Attempts": 3, "Interval": 300 * S, "Delay": 25 * S, "Mode": "delay"},
        ),
        id="restart-policy",
    ),
    pytest.param(
        setp(f"{G}.ReschedulePolicy", {"Attempts": 3, "Interval": 3600 * S, "Unlimited": False}),
        id="reschedule-policy-merged-with-defaults",
    ),
    pytest.param(setp(f"{G}.Scaling", {"Min": 1, "Max": 5, "Enabled": True}), id="scaling"),
]


@pytest.mark.parametrize("mutation", GOOD_VARIANTS)
def test_valid_variants_pass(mutation):
    assert check_job(mutated(mutation)) == []


# --------------------------------------------------------------------------- every rule fails

BAD = [
    # schema part: strict keys, types, ranges
    pytest.param(setp("Bogus", 1), "Job.Bogus: unknown field", id="unknown-key-job", marks=needs_schema),
    pytest.param(setp(f"{G}.Cnt", 2), "Job.TaskGroups[0].Cnt: unknown field", id="unknown-key-group", marks=needs_schema),
    pytest.param(setp(f"{T}.Image", "x"), "Job.TaskGroups[0].Tasks[0].Image: unknown field", id="unknown-key-task", marks=needs_schema),
    pytest.param(setp(f"{SV}.Port", "http"), "Job.TaskGroups[0].Services[0].Port: unknown field", id="unknown-key-service", marks=needs_schema),
    pytest.param(setp(f"{TCP}.Intervall", S), "Checks[0].Intervall: unknown field", id="unknown-key-check", marks=needs_schema),
    pytest.param(setp(f"{T}.driver", "docker"), 'did you mean "Driver"', id="unknown-key-wrong-case", marks=needs_schema),
    pytest.param(setp(f"{G}.Count", "2"), 'Job.TaskGroups[0].Count: expected integer, got string "2"', id="type-count-string", marks=needs_schema),
    pytest.param(setp(f"{SV}.Tags", "v1"), "Services[0].Tags: expected an array", id="type-tags-not-list", marks=needs_schema),
    pytest.param(setp(f"{SV}.Tags", ["v1", None]), "Tags[1]: must not be null", id="type-null-list-item", marks=needs_schema),
    pytest.param(setp(f"{SP}.Weight", 200), "Spreads[0].Weight: 200 is above the maximum 127", id="type-int8-range", marks=needs_schema),
    pytest.param(setp(f"{T}.Leader", "true"), "Leader: expected boolean", id="type-bool", marks=needs_schema),
    # durations are integer nanoseconds (checked with or without the spec)
    pytest.param(setp(f"{TCP}.Interval", "10s"), "Checks[0].Interval: duration must be an integer number of nanoseconds, got string \"10s\" (HCL duration syntax; in JSON write 10000000000)", id="duration-string-check"),
    pytest.param(setp("Update.MinHealthyTime", "10s"), "Job.Update.MinHealthyTime: duration must be an integer", id="duration-string-update"),
    pytest.param(setp(f"{T}.KillTimeout", 5.0e9), "KillTimeout: duration must be an integer number of nanoseconds, got number", id="duration-float"),
    pytest.param(setp(f"{TM}.Splay", "5s"), "Templates[0].Splay: duration must be an integer", id="duration-string-template"),
    # Meta / Env hold strings
    pytest.param(setp("Meta.replicas", 3), "Job.Meta.replicas: Meta values must be strings, got integer 3", id="meta-int"),
    pytest.param(setp(f"{T}.Env.DEBUG", True), "Env.DEBUG: Env values must be strings, got boolean true", id="env-bool"),
    pytest.param(setp(f"{G}.Meta", ["a"]), "Meta must be an object of string values", id="meta-not-map"),
    # job
    pytest.param(delp("ID"), "Missing job ID", id="job-id-missing"),
    pytest.param(setp("ID", "my web"), "Job ID contains a space", id="job-id-space"),
    pytest.param(setp("ID", "web\0"), "Job ID contains a null character", id="job-id-nul"),
    pytest.param(setp("Name", ""), "Missing job name", id="job-name-empty"),
    pytest.param(setp("Type", "web"), 'Invalid job type: "web"', id="job-type-invalid"),
    pytest.param(setp("Type", ""), "Missing job type", id="job-type-empty"),
    pytest.param(setp("Priority", 101), "job priority must be between [1, 100]", id="priority-101"),
    pytest.param(setp("Priority", -5), "job priority must be between [1, 100]", id="priority-negative"),
    pytest.param(setp("Datacenters", ["dc1", ""]), "Job datacenter must be non-empty string", id="datacenter-empty"),
    pytest.param(setp("TaskGroups", []), "Missing job task groups", id="no-groups"),
    pytest.param(dup(G), "Job task group 2 redefines 'app' from group 1", id="duplicate-group"),
    pytest.param(setp(f"{G}.Name", ""), "Job task group 1 missing name", id="group-name-empty"),
    pytest.param(setp("Periodic", {"Spec": "@daily"}), 'Periodic can only be used with "batch" or "sysbatch" scheduler', id="periodic-service"),
    pytest.param(chain(to_batch, setp("Periodic", {"SpecType": "cron"})), "Must specify a spec", id="periodic-no-spec"),
    pytest.param(setp("ParameterizedJob", {"Payload": "optional"}), "Parameterized job can only be used with", id="parameterized-service"),
    pytest.param(chain(to_batch, setp("ParameterizedJob", {"Payload": "maybe"})), 'Unknown payload requirement: "maybe"', id="parameterized-payload"),
    # system jobs
    pytest.param(chain(to_system, setp(f"{G}.Count", 2)), "Job task group app has count 2. Count cannot exceed 1 with system scheduler", id="system-count-2"),
    pytest.param(chain(to_system, setp(f"{G}.Spreads", [{"Attribute": "${node.datacenter}"}])), "System jobs may not have a spread block", id="system-spread"),
    pytest.param(chain(to_system, setp("Spreads", [{"Attribute": "${node.datacenter}"}])), "System jobs may not have a spread block", id="system-job-spread"),
    pytest.param(chain(to_system, setp(f"{G}.Affinities", [{"LTarget": "${node.class}", "Operand": "=", "RTarget": "a"}])), "System jobs may not have an affinity block", id="system-affinity"),
    pytest.param(chain(to_system, setp(f"{G}.ReschedulePolicy", {"Attempts": 1})), "System jobs should not have a reschedule policy", id="system-reschedule"),
    pytest.param(chain(to_system, setp("Reschedule", {"Attempts": 1})), "System jobs should not have a reschedule policy", id="system-job-reschedule"),
    pytest.param(chain(to_system, setp(f"{G}.Scaling", {"Min": 1, "Max": 1})), "do not support scaling blocks", id="system-scaling"),
    # group
    pytest.param(setp(f"{G}.Count", -1), "Task group count can't be negative", id="count-negative"),
    pytest.param(setp(f"{G}.Tasks", []), "Task group app validation failed: Missing tasks for task group", id="group-no-tasks"),
    pytest.param(chain(to_batch, setp(f"{G}.Update", {"MaxParallel": 1})), 'Job type "batch" does not allow update block', id="update-in-batch"),
    pytest.param(chain(to_batch, setp(f"{G}.Migrate", {"MaxParallel": 1})), 'Job type "batch" does not allow migrate block', id="migrate-in-batch"),
    pytest.param(setp(f"{G}.Scaling", {"Min": 1, "Max": 2}), "task group count must not be greater than maximum count in scaling policy", id="scaling-count-above-max"),
    pytest.param(setp(f"{G}.Scaling", {"Min": 5, "Max": 2}), "maximum count must not be less than minimum count", id="scaling-max-below-min"),
    pytest.param(setp(f"{G}.EphemeralDisk", {"SizeMB": 5}), "minimum DiskMB value is 10; got 5", id="ephemeral-disk-too-small"),
    pytest.param(setp(f"{G}.ShutdownDelay", -S), "ShutdownDelay must be a positive value", id="group-shutdown-delay-negative"),
    pytest.param(setp(f"{G}.Volumes", {"data": {"Type": "nfs", "Source": "x"}}), "Task group volume validation for data failed: volume has unrecognized type nfs", id="volume-type"),
    pytest.param(setp(f"{T}.VolumeMounts", [{"Volume": "data", "Destination": "/data"}]), "Volume Mount (0) references undefined volume data", id="volume-mount-undefined"),
    # restart / reschedule / update / migrate
    pytest.param(setp(f"{G}.RestartPolicy", {"Mode": "always"}), 'Unsupported restart mode: "always"', id="restart-mode"),
    pytest.param(setp(f"{G}.RestartPolicy", {"Interval": 2 * S}), "Interval can not be less than 5s (got 2s)", id="restart-interval"),
    pytest.param(setp(f"{G}.RestartPolicy", {"Attempts": 10, "Delay": 60 * S, "Interval": 300 * S}), "Nomad can't restart the TaskGroup 10 times in an interval of 5m0s with a delay of 1m0s", id="restart-impossible"),
    pytest.param(setp(f"{G}.RestartPolicy", {"Attempts": 0, "Mode": "delay"}), 'Restart policy "delay" with 0 attempts is ambiguous', id="restart-ambiguous"),
    pytest.param(setp(f"{T}.RestartPolicy", {"Mode": "never"}), 'Task restart policy: Unsupported restart mode: "never"', id="task-restart-mode"),
    pytest.param(setp(f"{G}.ReschedulePolicy", {"DelayFunction": "linear"}), 'Invalid delay function "linear", must be one of ["constant" "exponential" "fibonacci"]', id="reschedule-delay-function"),
    pytest.param(setp(f"{G}.ReschedulePolicy", {"Delay": S}), "Delay cannot be less than 5s (got 1s)", id="reschedule-delay"),
    pytest.param(setp(f"{G}.ReschedulePolicy", {"Attempts": 3, "Unlimited": False, "Interval": 60 * S, "Delay": 30 * S, "DelayFunction": "constant"}), "Nomad can only make 2 attempts in 1m0s", id="reschedule-not-viable"),
    pytest.param(setp("Update.MaxParallel", -1), "Max parallel can not be less than zero: -1 < 0", id="update-max-parallel"),
    pytest.param(setp("Update.HealthCheck", "http"), 'Invalid health check given: "http"', id="update-health-check"),
    pytest.param(setp("Update.MinHealthyTime", -S), "Minimum healthy time may not be less than zero", id="update-negative-duration"),
    pytest.param(setp("Update.HealthyDeadline", 5 * S), "Minimum healthy time must be less than healthy deadline: 10s > 5s", id="update-deadline-order"),
    pytest.param(setp(f"{G}.Update", {"Canary": 0, "AutoPromote": True}), "Auto Promote requires a Canary count greater than zero", id="update-auto-promote"),
    pytest.param(setp(f"{T}.KillTimeout", 900 * S), "Task app has a KillTimout (15m0s) longer than the group's ProgressDeadline (10m0s)", id="kill-timeout-vs-progress"),
    pytest.param(setp("Migrate", {"HealthCheck": "manual"}), 'Invalid HealthCheck: "manual"', id="migrate-health-check"),
    # constraints
    pytest.param(setp(f"{CN}.Operand", "~="), 'Constraint 1 validation failed: Unknown constraint type "~="', id="constraint-bad-operand"),
    pytest.param(delp(f"{CN}.Operand"), "Constraint 1 validation failed: Missing constraint operand", id="constraint-missing-operand"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${attr.kernel.name}", "Operand": "="}), 'Constraint 2 validation failed: Operator "=" requires an RTarget', id="constraint-missing-rtarget"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${meta.ssd}", "Operand": "is_set", "RTarget": "true"}), 'Operator "is_set" does not support an RTarget', id="constraint-is-set-rtarget"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${meta.x}", "Operand": "set_contains"}), "Set contains constraint requires an RTarget", id="constraint-set-contains-rtarget"),
    pytest.param(addp(f"{G}.Constraints", {"Operand": "=", "RTarget": "linux"}), "No LTarget provided but is required by constraint", id="constraint-missing-ltarget"),
    pytest.param(addp(f"{T}.Constraints", {"Operand": "distinct_hosts", "RTarget": "true"}), "Constraint 1 has disallowed Operand at task level: distinct_hosts", id="distinct-hosts-task-level"),
    pytest.param(addp(f"{T}.Constraints", {"LTarget": "${meta.rack}", "Operand": "distinct_property"}), "disallowed Operand at task level: distinct_property", id="distinct-property-task-level"),
    pytest.param(setp(f"{CN}.RTarget", "0"), "Distinct Property must have an allowed count of 1 or greater: 0 < 1", id="distinct-property-zero"),
    pytest.param(setp(f"{CN}.RTarget", "two"), 'Failed to convert RTarget "two" to uint64', id="distinct-property-not-int"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${attr.os.name}", "Operand": "regexp", "RTarget": "(ubuntu"}), "Regular expression failed to compile", id="regexp-invalid"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${attr.os.name}", "Operand": "regexp", "RTarget": "^(?!win)"}), "invalid or unsupported Perl syntax", id="regexp-lookahead-not-re2"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${attr.os.version}", "Operand": "version", "RTarget": "~> foo"}), "Version constraint is invalid: Malformed constraint: ~> foo", id="version-malformed"),
    pytest.param(addp(f"{G}.Constraints", {"LTarget": "${attr.os.version}", "Operand": "semver", "RTarget": "latest"}), "Semver constraint is invalid", id="semver-malformed"),
    pytest.param(setp(f"{CN}.LTarget", "${node.bogus}"), 'unsupported attribute "${node.bogus}"', id="constraint-unknown-attribute"),
    pytest.param(setp(f"{CN}.LTarget", "${meta.zone"), "is missing a closing brace", id="constraint-attribute-brace"),
    # affinities
    pytest.param(setp("Affinities", [{"LTarget": "${node.class}", "Operand": "=", "RTarget": "a", "Weight": 0}]), "Affinity 1 validation failed: Affinity weight cannot be zero", id="affinity-weight-zero"),
    pytest.param(setp(f"{G}.Affinities", [{"LTarget": "${node.class}", "Operand": "=", "RTarget": "a", "Weight": 101}]), "Affinity weight must be within the range [-100,100]", id="affinity-weight-101"),
    pytest.param(setp(f"{T}.Affinities", [{"LTarget": "${node.class}", "Operand": "distinct_hosts"}]), 'Unknown affinity operator "distinct_hosts"', id="affinity-bad-operand"),
    pytest.param(setp("Affinities", [{"LTarget": "${node.class}", "RTarget": "a"}]), "Missing affinity operand", id="affinity-missing-operand"),
    # spreads
    pytest.param(setp(f"{SP}.SpreadTarget.1.Percent", 51), "Sum of spread target percentages must not be greater than 100%; got 101%", id="spread-sum-101"),
    pytest.param(setp(f"{SP}.Weight", 0), "Spread 1 validation failed: Spread block must have a positive weight from 0 to 100", id="spread-weight-0"),
    pytest.param(setp(f"{SP}.Weight", 101), "Spread block must have a positive weight from 0 to 100", id="spread-weight-101"),
    pytest.param(setp(f"{SP}.SpreadTarget.1.Value", "z1"), 'Spread target value "z1" already defined', id="spread-duplicate-target"),
    pytest.param(setp(f"{SP}.SpreadTarget", [{"Value": "z1", "Percent": 150}]), 'Spread target percentage for value "z1" must be between 0 and 100', id="spread-percent-150"),
    pytest.param(delp(f"{SP}.Attribute"), "Missing spread attribute", id="spread-missing-attribute"),
    pytest.param(setp("Spreads", [{"Attribute": "${node.datacenter}", "Weight": -1}]), "Spread 1 validation failed: Spread block must have a positive weight", id="job-spread-weight-negative"),
    # networks
    pytest.param(addp(f"{G}.Networks.0.DynamicPorts", {"Label": "http"}), "Task group network validation failed: Port label http already in use by taskgroup network", id="duplicate-port-label"),
    pytest.param(setp(f"{G}.Networks.0.ReservedPorts", [{"Label": "http", "Value": 80}]), "Port label http already in use", id="duplicate-label-dynamic-reserved"),
    pytest.param(setp(f"{G}.Networks.0.ReservedPorts", [{"Label": "lb", "Value": 70000}]), "Port lb (70000) cannot be greater than 65535", id="static-port-too-high"),
    pytest.param(setp(f"{G}.Networks.0.ReservedPorts", [{"Label": "lb", "Value": 0}]), "Static port lb must have a Value between 1 and 65535; got 0", id="static-port-zero"),
    pytest.param(setp(f"{G}.Networks.0.ReservedPorts", [{"Label": "a", "Value": 8080}, {"Label": "b", "Value": 8080}]), "Static port 8080 already reserved by taskgroup network:a", id="static-port-twice"),
    pytest.param(setp(f"{G}.Networks.0.DynamicPorts.0.To", -2), 'Port "http" cannot be mapped to negative value -2', id="port-to-negative"),
    pytest.param(addp(f"{G}.Networks", {"Mode": "host"}), "Only one network block is allowed per group", id="two-networks"),
    # services
    pytest.param(setp(f"{SV}.Name", "web_api"), 'Service[0] web_api validation failed: Service name must be valid per RFC 1123 and can contain only alphanumeric characters or dashes and must be no longer than 63 characters: "web_api"', id="service-name-underscore"),
    pytest.param(setp(f"{SV}.Name", "web.api"), "Service name must be valid per RFC 1123", id="service-name-dot"),
    pytest.param(setp(f"{SV}.Name", "a" * 64), "must be no longer than 63 characters", id="service-name-64-chars"),
    pytest.param(setp(f"{SV}.Name", "-web"), "Service name must be valid per RFC 1123", id="service-name-leading-hyphen"),
    pytest.param(setp(f"{SV}.Name", "my_svc-${NOMAD_META_x}"), "Service name must be valid per RFC 1123", id="service-name-underscore-outside-var"),
    pytest.param(addp(f"{T}.Services", {"Name": "bad_name", "PortLabel": "http"}), 'service[0] "bad_name" validation failed: Service name must be valid', id="task-service-name"),
    pytest.param(chain(nomad_provider, addp(f"{T}.Services", task_service)), "Multiple service providers used: task group services must use the same provider", id="provider-mix"),
    pytest.param(setp(f"{SV}.Provider", "etcd"), 'Service provider must be "consul", or "nomad"; not "etcd"', id="provider-invalid"),
    pytest.param(chain(nomad_provider, setp(TCP, {"Name": "s", "Type": "script", "Command": "/bin/true", "Interval": 10 * S, "Timeout": 2 * S})), 'invalid check type ("script"), must be one of tcp, http', id="nomad-provider-script-check"),
    pytest.param(chain(nomad_provider, setp(f"{SV}.Connect", {"Native": True})), "Service with provider nomad cannot include Connect blocks", id="nomad-provider-connect"),
    pytest.param(setp(f"{SV}.PortLabel", "admin"), 'port label "admin" referenced by services web-api does not exist', id="group-service-unknown-port"),
    pytest.param(setp(f"{HTTP}.PortLabel", "metrics"), 'port label "metrics" referenced by services web-api does not exist', id="group-check-unknown-port"),
    pytest.param(addp(f"{T}.Services", {"Name": "m", "PortLabel": "metrics"}), 'Task app validation failed: port label "metrics" referenced by services m does not exist', id="task-service-unknown-port"),
    pytest.param(addp(f"{T}.Services", {"Name": "m", "PortLabel": "9100"}), 'port label "9100" referenced by services m does not exist', id="task-service-numeric-port-needs-driver-mode"),
    pytest.param(setp(f"{SV}.AddressMode", "driver"), 'service "web-api" cannot use address_mode="driver"', id="group-service-driver-mode"),
    pytest.param(setp(f"{SV}.AddressMode", "public"), 'Service address_mode must be "auto", "host", or "driver"; not "public"', id="service-address-mode"),
    pytest.param(setp(f"{SV}.OnUpdate", "always"), "Service on_update must be", id="service-on-update"),
    pytest.param(dup(SV), "Services are not unique: group->web-api:http", id="duplicate-group-service"),
    pytest.param(chain(addp(f"{T}.Services", task_service), dup(f"{T}.Services.0")), 'service "app-metrics" is duplicate', id="duplicate-task-service"),
    pytest.param(addp(f"{T}.Services", {"Name": "m", "PortLabel": "http", "Checks": [{"Type": "tcp", "Interval": S, "Timeout": S}, {"Type": "http", "Path": "/", "Interval": S, "Timeout": S}]}), 'check "service: \\"m\\" check" is duplicate', id="duplicate-default-check-names"),
    # checks
    pytest.param(setp(f"{TCP}.Type", "ping"), 'Check alive invalid: invalid check type ("ping"), must be one of grpc, tcp, http, script', id="check-type-invalid"),
    pytest.param(delp(f"{HTTP}.Path"), "Check ready invalid: http type must have http path", id="http-check-no-path"),
    pytest.param(setp(f"{HTTP}.Path", "http://localhost/health"), "http type must have relative http path", id="http-check-absolute-path"),
    pytest.param(setp(f"{TCP}.Interval", 500_000_000), "Check alive invalid: interval (500ms) cannot be lower than 1s", id="check-interval-500ms"),
    pytest.param(delp(f"{TCP}.Interval"), "missing required value interval. Interval cannot be less than 1s", id="check-interval-missing"),
    pytest.param(setp(f"{TCP}.Timeout", 100_000_000), "timeout (100ms) is lower than required minimum timeout 1s", id="check-timeout-100ms"),
    pytest.param(delp(f"{TCP}.Timeout"), "missing required value timeout", id="check-timeout-missing"),
    pytest.param(setp(f"{TCP}.InitialStatus", "ok"), "invalid initial check state (ok)", id="check-initial-status"),
    pytest.param(setp(f"{TCP}.Type", "script"), "script type must have a valid script path", id="script-check-no-command"),
    pytest.param(setp(TCP, {"Name": "s", "Type": "script", "Command": "/bin/true", "Interval": S, "Timeout": S}), "Service [app]->web-api or Check s must specify task parameter", id="group-script-check-no-task"),
    pytest.param(setp(f"{TCP}.TaskName", "ghost"), "Check alive invalid: refers to non-existent task ghost", id="group-check-unknown-task"),
    pytest.param(chain(delp(f"{SV}.PortLabel")), "Check alive invalid: check requires a port but neither check nor service \"web-api\" have a port", id="check-needs-port"),
    pytest.param(setp(f"{TCP}.CheckRestart", {"Limit": -1}), "limit must be greater than or equal to 0 but found -1", id="check-restart-limit"),
    # tasks
    pytest.param(setp(f"{T}.Name", "app/main"), "Task app/main validation failed: Task name cannot include slashes", id="task-name-slash"),
    pytest.param(setp(f"{T}.Name", "alloc"), 'Task name cannot be "alloc"', id="task-name-alloc"),
    pytest.param(setp(f"{T}.Name", ""), "Task 1 missing name", id="task-name-empty"),
    pytest.param(dup(T), "Task 2 redefines 'app' from task 1", id="duplicate-task"),
    pytest.param(chain(dup(T), setp(f"{T}.Leader", True), setp(f"{G}.Tasks.1.Leader", True), setp(f"{G}.Tasks.1.Name", "b")), "Only one task may be marked as leader", id="two-leaders"),
    pytest.param(delp(f"{T}.Driver"), "Task app validation failed: Missing task driver", id="task-driver-missing"),
    pytest.param(delp(f"{T}.Config.image"), 'docker driver config requires a non-empty "image"', id="docker-image-missing"),
    pytest.param(chain(setp(f"{T}.Driver", "exec"), setp(f"{T}.Config", {"args": ["-v"]})), 'exec driver config requires a non-empty "command"', id="exec-command-missing"),
    pytest.param(chain(setp(f"{T}.Driver", "raw_exec"), setp(f"{T}.Config", None)), 'raw_exec driver config requires a non-empty "command"', id="raw-exec-command-missing"),
    pytest.param(setp(f"{T}.Resources.CPU", 0), "minimum CPU value is 1; got 0", id="cpu-zero"),
    pytest.param(setp(f"{T}.Resources.MemoryMB", 5), "minimum MemoryMB value is 10; got 5", id="memory-5"),
    pytest.param(setp(f"{T}.Resources.Cores", 2), "Task can only ask for 'cpu' or 'cores' resource, not both.", id="cpu-and-cores"),
    pytest.param(setp(f"{T}.Resources.MemoryMaxMB", 128), "MemoryMaxMB value (128) should be larger than MemoryMB value (256)", id="memory-max-below-memory"),
    pytest.param(setp(f"{T}.Lifecycle", {"Hook": "prestop"}), "Lifecycle validation failed: invalid hook: prestop", id="lifecycle-hook"),
    pytest.param(setp("Priority", 0), "job priority must be between [1, 100]", id="priority-0"),
    pytest.param(chain(to_batch, setp("Update", {"MaxParallel": 1})), 'Job type "batch" does not allow update block', id="job-update-in-batch"),
    pytest.param(setp(f"{T}.KillTimeout", -S), "KillTimeout must be a positive value", id="kill-timeout-negative"),
    pytest.param(setp(f"{T}.LogConfig", {"MaxFiles": 20, "MaxFileSizeMB": 20}), "log storage (400 MB) must be less than requested disk capacity (300 MB)", id="logs-exceed-disk"),
    pytest.param(setp(f"{T}.Artifacts", [{"GetterSource": "https://x/a.tgz", "RelativeDest": "../../../etc"}]), "Artifact 1 validation failed: destination escapes allocation directory", id="artifact-escape"),
    # templates
    pytest.param(chain(setp(f"{TM}.Envvars", False), setp(f"{TM}.ChangeMode", "signal"), setp(f"{TM}.ChangeSignal", "")), "Template 1 validation failed: Must specify signal value when change mode is signal", id="template-signal-no-signal"),
    pytest.param(chain(setp(f"{TM}.ChangeMode", "signal"), setp(f"{TM}.ChangeSignal", "SIGHUP")), "Template 1 validation failed: cannot use signals with env var templates", id="env-template-signal"),
    pytest.param(delp(f"{TM}.DestPath"), "Must specify a destination for the template", id="template-no-destination"),
    pytest.param(setp(f"{TM}.ChangeMode", "reload"), "Invalid change mode. Must be one of the following: noop, signal, script, restart", id="template-change-mode"),
    pytest.param(setp(f"{TM}.ChangeMode", "script"), "must specify change script configuration value when change mode is script", id="template-script-missing"),
    pytest.param(chain(setp(f"{TM}.ChangeMode", "script"), setp(f"{TM}.ChangeScript", {"Args": []})), "must specify script path value when change mode is script", id="template-script-no-command"),
    pytest.param(setp(f"{TM}.Splay", -S), "Must specify positive splay value", id="template-negative-splay"),
    pytest.param(setp(f"{TM}.DestPath", "../../../etc/passwd"), "destination escapes allocation directory", id="template-escape"),
    pytest.param(delp(f"{TM}.EmbeddedTmpl"), "Must specify a source path or have an embedded template", id="template-no-source"),
    pytest.param(setp(f"{TM}.Perms", "rw-r--r--"), 'Failed to parse "rw-r--r--" as octal', id="template-perms"),
    pytest.param(dup(TM), "Template 2 has same destination as 1", id="template-duplicate-destination"),
    pytest.param(setp(f"{TM}.Wait", {"Min": 10 * S, "Max": 5 * S}), "wait min 10s is greater than max 5s", id="template-wait"),
]  # fmt: skip


@pytest.mark.parametrize(("mutation", "expected"), BAD)
def test_each_rule_rejects_a_known_bad_job(mutation, expected):
    problems = check_job(mutated(mutation))
    assert any(expected in p for p in problems), problems


def test_problems_are_deterministic():
    job = mutated(
        chain(
            setp(f"{SV}.Name", "web_api"),
            setp(f"{TCP}.Interval", "10s"),
            setp(f"{CN}.Operand", "~="),
            setp(f"{SP}.Weight", 0),
        )
    )
    first = check_job(job)
    assert first == check_job(copy.deepcopy(job))
    assert len(first) >= 4


def test_nested_prefixes_name_the_group_and_task():
    problems = check_job(mutated(delp(f"{T}.Driver")))
    assert problems == [
        "Task group app validation failed: Task app validation failed: Missing task driver"
    ]


def test_request_wrapper_is_pointed_out():
    assert check_job({"Job": base_job()}) == [
        'Job: got the request wrapper {"Job": ...}; pass the bare Job object'
    ]


def test_non_object_job():
    assert check_job([]) == ["Job: expected a JSON object, got array"]


# --------------------------------------------------------------------------- error body


def test_nomad_error_text_one_problem():
    assert nomad_error_text(["Missing job ID"]) == "1 error occurred:\n\t* Missing job ID\n\n"


def test_nomad_error_text_two_problems():
    text = nomad_error_text(["Missing job ID", "Missing job task groups"])
    assert text == "2 errors occurred:\n\t* Missing job ID\n\t* Missing job task groups\n\n"


def test_nomad_error_text_from_check_job():
    text = nomad_error_text(check_job(mutated(setp("ID", "my web"))))
    assert text == "1 error occurred:\n\t* Job ID contains a space\n\n"


# --------------------------------------------------------------------------- without the spec


@pytest.fixture
def no_schema(tmp_path, monkeypatch):
    """Point NOMADGEN_SHARED at an empty directory, with a fresh spec cache on both sides."""
    monkeypatch.setenv("NOMADGEN_SHARED", str(tmp_path))
    jobcheck.reset_cache()
    yield tmp_path
    monkeypatch.undo()
    jobcheck.reset_cache()


def test_rules_still_run_without_the_schema(no_schema):
    tmp_path = no_schema
    assert jobcheck.openapi_path() == tmp_path / "nomad" / "openapi.yaml"
    assert not schema_available()

    bad_operand = check_job(mutated(setp(f"{CN}.Operand", "~=")))
    assert bad_operand == [
        'Task group app validation failed: Constraint 1 validation failed: Unknown constraint type "~="'
    ]
    # durations are typed without the spec too; unknown keys are not caught without it
    assert any(
        "duration must be an integer" in p
        for p in check_job(mutated(setp(f"{TCP}.Interval", "10s")))
    )
    assert check_job(mutated(setp("Bogus", 1))) == []
    assert check_job(base_job()) == []
