# --- api.nomad.hcl
job "api" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "nasty-values"
    nomadgen_set      = "api"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "api-zone-a" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-a"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "api"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-api"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "nasty-values"
        nomadgen_set         = "api"
      }

      check {
        name     = "api tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "api" {
      driver = "docker"

      config {
        args    = ["--greeting", "héllo \"wörld\" $${NOMAD_PORT_http} C:\\path\\ 東京", "--tab\there"]
        command = "/bin/api"
        image   = "example/api:1"
        ports   = ["http"]
      }

      env {
        BACKSLASHES     = "\\\\server\\share\\"
        EMOJI           = "🚀 ü ß"
        ESCAPED         = "$$${already} %%%{kept}"
        MULTILINE       = "line one\nline two\r\n\ttabbed"
        TEMPLATE_LIKE   = "{{ env \"SECRET\" }} $${attr.kernel.name} %%{ if true }x%%{ endif }"
        TRAILING_DOLLAR = "price$"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-api") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-api" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/nasty-values/no-healthy-instance/redis-api" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-api.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "api-zone-b" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-b"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "api"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-api"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "nasty-values"
        nomadgen_set         = "api"
      }

      check {
        name     = "api tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "api" {
      driver = "docker"

      config {
        args    = ["--greeting", "héllo \"wörld\" $${NOMAD_PORT_http} C:\\path\\ 東京", "--tab\there"]
        command = "/bin/api"
        image   = "example/api:1"
        ports   = ["http"]
      }

      env {
        BACKSLASHES     = "\\\\server\\share\\"
        EMOJI           = "🚀 ü ß"
        ESCAPED         = "$$${already} %%%{kept}"
        MULTILINE       = "line one\nline two\r\n\ttabbed"
        TEMPLATE_LIKE   = "{{ env \"SECRET\" }} $${attr.kernel.name} %%{ if true }x%%{ endif }"
        TRAILING_DOLLAR = "price$"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-api") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-api" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/nasty-values/no-healthy-instance/redis-api" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-api.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "api-zone-c" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-c"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "api"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-api"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "nasty-values"
        nomadgen_set         = "api"
      }

      check {
        name     = "api tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "api" {
      driver = "docker"

      config {
        args    = ["--greeting", "héllo \"wörld\" $${NOMAD_PORT_http} C:\\path\\ 東京", "--tab\there"]
        command = "/bin/api"
        image   = "example/api:1"
        ports   = ["http"]
      }

      env {
        BACKSLASHES     = "\\\\server\\share\\"
        EMOJI           = "🚀 ü ß"
        ESCAPED         = "$$${already} %%%{kept}"
        MULTILINE       = "line one\nline two\r\n\ttabbed"
        TEMPLATE_LIKE   = "{{ env \"SECRET\" }} $${attr.kernel.name} %%{ if true }x%%{ endif }"
        TRAILING_DOLLAR = "price$"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-api") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-api" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/nasty-values/no-healthy-instance/redis-api" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-api.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}

# --- redis-api.nomad.hcl
job "redis-api" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "nasty-values"
    nomadgen_set      = "redis:api"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "redis-zone-a" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-a"
    }

    network {
      mode = "host"

      port "redis" {
        to = 6379
      }
    }

    service {
      name     = "redis-api"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-api"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "nasty-values"
        nomadgen_set         = "redis:api"
      }

      check {
        name     = "redis-api script"
        type     = "script"
        command  = "sh"
        args     = ["-c", "redis-cli -p 6379 ping | grep -q PONG"]
        interval = "10s"
        timeout  = "2s"
        task     = "redis"
      }
    }

    ephemeral_disk {
      size    = 512
      sticky  = true
      migrate = true
    }

    task "redis" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        args  = ["redis-server", "--dir", "/alloc/data", "--appendonly", "yes"]
        image = "redis:7-alpine"
        ports = ["redis"]
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }

  group "redis-zone-b" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-b"
    }

    network {
      mode = "host"

      port "redis" {
        to = 6379
      }
    }

    service {
      name     = "redis-api"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-api"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "nasty-values"
        nomadgen_set         = "redis:api"
      }

      check {
        name     = "redis-api script"
        type     = "script"
        command  = "sh"
        args     = ["-c", "redis-cli -p 6379 ping | grep -q PONG"]
        interval = "10s"
        timeout  = "2s"
        task     = "redis"
      }
    }

    ephemeral_disk {
      size    = 512
      sticky  = true
      migrate = true
    }

    task "redis" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        args  = ["redis-server", "--dir", "/alloc/data", "--appendonly", "yes"]
        image = "redis:7-alpine"
        ports = ["redis"]
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }

  group "redis-zone-c" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-c"
    }

    network {
      mode = "host"

      port "redis" {
        to = 6379
      }
    }

    service {
      name     = "redis-api"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-api"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "nasty-values"
        nomadgen_set         = "redis:api"
      }

      check {
        name     = "redis-api script"
        type     = "script"
        command  = "sh"
        args     = ["-c", "redis-cli -p 6379 ping | grep -q PONG"]
        interval = "10s"
        timeout  = "2s"
        task     = "redis"
      }
    }

    ephemeral_disk {
      size    = 512
      sticky  = true
      migrate = true
    }

    task "redis" {
      driver       = "docker"
      kill_timeout = "30s"

      config {
        args  = ["redis-server", "--dir", "/alloc/data", "--appendonly", "yes"]
        image = "redis:7-alpine"
        ports = ["redis"]
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
