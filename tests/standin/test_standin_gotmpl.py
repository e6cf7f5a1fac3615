"""The stand-in's text/template subset (dev/standin/nomad_standin/gotmpl.py): what it renders, and that what it
cannot render is reported rather than guessed."""

from __future__ import annotations

import pytest
from nomad_standin import gotmpl


def render(text: str, data: dict | None = None, env: dict | None = None) -> str:
    data = data or {}

    def fetch(fn, arg):
        return data[(fn, arg)]

    return gotmpl.Renderer(fetch, env or {}).render(text)


def test_trim_markers_and_literal_delimiters():
    assert render('a  {{- "x" -}}  b') == "axb"
    assert render('a {{ "{{" }} b') == "a {{ b"
    assert render("{{/* a comment */}}x") == "x"


def test_with_else_range_and_variables():
    svc = [{"Address": "10.0.0.1", "Port": 21000}, {"Address": "10.0.0.2", "Port": 21001}]
    data = {
        ("service", "db"): svc,
        ("service", "none"): [],
        ("nomadVar", "nomad/jobs/x"): {"b": "2", "a": "1"},
    }
    assert (
        render(
            '{{ with service "db" }}{{ with index . 1 }}{{ .Address }}:{{ .Port }}'
            "{{ end }}{{ end }}",
            data,
        )
        == "10.0.0.2:21001"
    )
    assert render('{{ with service "none" }}yes{{ else }}no{{ end }}', data) == "no"
    assert (
        render('{{ range $k, $v := nomadVar "nomad/jobs/x" }}{{ $k }}={{ $v }};{{ end }}', data)
        == "a=1;b=2;"
    )
    assert render('{{ range service "db" }}{{ .Port }} {{ end }}', data) == "21000 21001 "
    assert render('{{ if eq (env "MODE") "x" }}on{{ else }}off{{ end }}', env={"MODE": "x"}) == "on"


def test_functions():
    data = {("key", "k"): '{"version": "abc", "n": 3}'}
    assert render('{{ with key "k" | parseJSON }}{{ .version }}/{{ .n }}{{ end }}', data) == "abc/3"
    assert render('{{ "a\\"b" | toJSON }}') == '"a\\"b"'
    assert render('{{ printf "%s-%d" "x" 4 | toUpper }}') == "X-4"


@pytest.mark.parametrize(
    "text",
    [
        '{{ define "x" }}{{ end }}',
        "{{ sockaddr }}",
        '{{ with service "a" }}',
        "{{ end }}",
        "{{ $undefined }}",
    ],
)
def test_what_it_cannot_render_is_reported(text):
    with pytest.raises(gotmpl.Unsupported):
        render(text, {("service", "a"): []})


def test_env_lines_as_godotenv_reads_them():
    text = "\n# c\nA=1\nexport B=\"x\\ny\"\nC='q'\nnot a pair\n"
    assert gotmpl.env_lines(text) == {"A": "1", "B": "x\ny", "C": "q"}
