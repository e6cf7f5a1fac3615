import pytest

from tests.nomad_tools import RenderedJobs, assert_proven, binary

pytest_plugins = ["nomad_standin.pytest_plugin"]


@pytest.fixture(autouse=True)
def _rendered_jobs_are_proven_by_nomad(request, monkeypatch):
    """Every job any test renders (in-process: render, pipeline, the CLI through CliRunner) is
    proven by Nomad 1.5.8's own parser, decoder and validator once the test is done
    (tests/nomad_tools.py: prove). Without ../shared's nomad-jobspec nothing is recorded: the
    proof tests themselves skip with the reason. `@pytest.mark.unproven(reason)` opts out."""
    marker = request.node.get_closest_marker("unproven")
    if binary() is None or marker is not None:
        yield None
        return
    rendered = RenderedJobs(monkeypatch)
    yield rendered
    if rendered.jobs:
        assert_proven(rendered.items())
