# --- app.nomad.hcl
job "app" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "user-templates"
    nomadgen_set      = "app"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "app-zone-a" {
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
      name     = "app"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "app"
      }

      check {
        name     = "app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "app" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".pgbouncer-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "pgbouncer-app" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          PGBOUNCER_HOST={{ .Address | toJSON }}
          PGBOUNCER_PORT={{ .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/pgbouncer-app" }}{{ end }}
        EOT
        destination = "local/nomadgen/pgbouncer-app.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-app" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/redis-app" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "app-zone-b" {
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
      name     = "app"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "app"
      }

      check {
        name     = "app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "app" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".pgbouncer-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "pgbouncer-app" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          PGBOUNCER_HOST={{ .Address | toJSON }}
          PGBOUNCER_PORT={{ .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/pgbouncer-app" }}{{ end }}
        EOT
        destination = "local/nomadgen/pgbouncer-app.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-app" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/redis-app" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "app-zone-c" {
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
      name     = "app"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "app"
      }

      check {
        name     = "app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "app" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".pgbouncer-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "pgbouncer-app" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          PGBOUNCER_HOST={{ .Address | toJSON }}
          PGBOUNCER_PORT={{ .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/pgbouncer-app" }}{{ end }}
        EOT
        destination = "local/nomadgen/pgbouncer-app.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-app" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/redis-app" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-app.env"
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

# --- pgbouncer-app.nomad.hcl
job "pgbouncer-app" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "user-templates"
    nomadgen_set      = "pgbouncer:app"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "pgbouncer-zone-a" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-a"
    }

    network {
      mode = "host"

      port "pg" {
        to = 5432
      }
    }

    service {
      name     = "pgbouncer-app"
      provider = "consul"
      port     = "pg"
      tags     = ["${node.datacenter}", "set-pgbouncer-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "pgbouncer:app"
      }

      check {
        name     = "pgbouncer-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "pgbouncer" {
      driver = "docker"

      config {
        image = "edoburu/pgbouncer:1.22"
        ports = ["pg"]
      }

      env {
        PSQL_CREDENTIALS = "nomad/jobs/psql-pgbouncer-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/psql-pgbouncer-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".psql-pgbouncer-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/psql-pgbouncer-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/psql-pgbouncer-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "pgbouncer-zone-b" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-b"
    }

    network {
      mode = "host"

      port "pg" {
        to = 5432
      }
    }

    service {
      name     = "pgbouncer-app"
      provider = "consul"
      port     = "pg"
      tags     = ["${node.datacenter}", "set-pgbouncer-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "pgbouncer:app"
      }

      check {
        name     = "pgbouncer-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "pgbouncer" {
      driver = "docker"

      config {
        image = "edoburu/pgbouncer:1.22"
        ports = ["pg"]
      }

      env {
        PSQL_CREDENTIALS = "nomad/jobs/psql-pgbouncer-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/psql-pgbouncer-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".psql-pgbouncer-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/psql-pgbouncer-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/psql-pgbouncer-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "pgbouncer-zone-c" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-c"
    }

    network {
      mode = "host"

      port "pg" {
        to = 5432
      }
    }

    service {
      name     = "pgbouncer-app"
      provider = "consul"
      port     = "pg"
      tags     = ["${node.datacenter}", "set-pgbouncer-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "pgbouncer:app"
      }

      check {
        name     = "pgbouncer-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "pgbouncer" {
      driver = "docker"

      config {
        image = "edoburu/pgbouncer:1.22"
        ports = ["pg"]
      }

      env {
        PSQL_CREDENTIALS = "nomad/jobs/psql-pgbouncer-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/psql-pgbouncer-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".psql-pgbouncer-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/user-templates/no-healthy-instance/psql-pgbouncer-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/psql-pgbouncer-app.env"
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

# --- psql-pgbouncer-app.nomad.hcl
job "psql-pgbouncer-app" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "user-templates"
    nomadgen_set      = "psql:pgbouncer:app"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "psql-zone-a" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-a"
    }

    network {
      mode = "host"

      port "db" {
        to = 5432
      }
    }

    service {
      name     = "psql-pgbouncer-app"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-psql-pgbouncer-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "psql:pgbouncer:app"
      }

      check {
        name     = "psql-pgbouncer-app script"
        type     = "script"
        command  = "pg_isready"
        args     = ["-q", "-h", "127.0.0.1", "-p", "5432"]
        interval = "10s"
        timeout  = "2s"
        task     = "psql"
      }
    }

    ephemeral_disk {
      size    = 1024
      sticky  = true
      migrate = true
    }

    task "psql" {
      driver       = "docker"
      kill_timeout = "30s"
      kill_signal  = "SIGINT"

      config {
        image = "postgres:16-alpine"
        ports = ["db"]
      }

      env {
        PGDATA        = "/alloc/data/pgdata"
        POSTGRES_DB   = "app"
        POSTGRES_USER = "app"
      }

      template {
        data = <<-EOT
          {{ with nomadVar "nomad/jobs/psql-pgbouncer-app" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
        EOT
        destination = "secrets/nomadgen.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }

  group "psql-zone-b" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-b"
    }

    network {
      mode = "host"

      port "db" {
        to = 5432
      }
    }

    service {
      name     = "psql-pgbouncer-app"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-psql-pgbouncer-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "psql:pgbouncer:app"
      }

      check {
        name     = "psql-pgbouncer-app script"
        type     = "script"
        command  = "pg_isready"
        args     = ["-q", "-h", "127.0.0.1", "-p", "5432"]
        interval = "10s"
        timeout  = "2s"
        task     = "psql"
      }
    }

    ephemeral_disk {
      size    = 1024
      sticky  = true
      migrate = true
    }

    task "psql" {
      driver       = "docker"
      kill_timeout = "30s"
      kill_signal  = "SIGINT"

      config {
        image = "postgres:16-alpine"
        ports = ["db"]
      }

      env {
        PGDATA        = "/alloc/data/pgdata"
        POSTGRES_DB   = "app"
        POSTGRES_USER = "app"
      }

      template {
        data = <<-EOT
          {{ with nomadVar "nomad/jobs/psql-pgbouncer-app" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
        EOT
        destination = "secrets/nomadgen.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }

  group "psql-zone-c" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-c"
    }

    network {
      mode = "host"

      port "db" {
        to = 5432
      }
    }

    service {
      name     = "psql-pgbouncer-app"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-psql-pgbouncer-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "psql:pgbouncer:app"
      }

      check {
        name     = "psql-pgbouncer-app script"
        type     = "script"
        command  = "pg_isready"
        args     = ["-q", "-h", "127.0.0.1", "-p", "5432"]
        interval = "10s"
        timeout  = "2s"
        task     = "psql"
      }
    }

    ephemeral_disk {
      size    = 1024
      sticky  = true
      migrate = true
    }

    task "psql" {
      driver       = "docker"
      kill_timeout = "30s"
      kill_signal  = "SIGINT"

      config {
        image = "postgres:16-alpine"
        ports = ["db"]
      }

      env {
        PGDATA        = "/alloc/data/pgdata"
        POSTGRES_DB   = "app"
        POSTGRES_USER = "app"
      }

      template {
        data = <<-EOT
          {{ with nomadVar "nomad/jobs/psql-pgbouncer-app" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
        EOT
        destination = "secrets/nomadgen.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}

# --- redis-app.nomad.hcl
job "redis-app" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "user-templates"
    nomadgen_set      = "redis:app"
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
    count = 2

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
      name     = "redis-app"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "redis:app"
      }

      check {
        name     = "redis-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "redis" {
      driver = "docker"

      config {
        image = "redis:7.2-alpine"
        ports = ["redis"]
      }

      resources {
        cpu    = 200
        memory = 1024
      }
    }
  }

  group "redis-zone-b" {
    count = 2

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
      name     = "redis-app"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "redis:app"
      }

      check {
        name     = "redis-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "redis" {
      driver = "docker"

      config {
        image = "redis:7.2-alpine"
        ports = ["redis"]
      }

      resources {
        cpu    = 200
        memory = 1024
      }
    }
  }

  group "redis-zone-c" {
    count = 2

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
      name     = "redis-app"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "user-templates"
        nomadgen_set         = "redis:app"
      }

      check {
        name     = "redis-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "redis" {
      driver = "docker"

      config {
        image = "redis:7.2-alpine"
        ports = ["redis"]
      }

      resources {
        cpu    = 200
        memory = 1024
      }
    }
  }
}
