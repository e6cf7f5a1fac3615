# --- dev-app.nomad.hcl
job "dev-app" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "env-dev@dev"
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

      port "dev_memcache_app" {
        to = 11211
      }
    }

    service {
      name     = "dev-app"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "app"
      }

      check {
        name     = "dev-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "dev-memcache-app"
      provider = "consul"
      port     = "dev_memcache_app"
      tags     = ["${node.datacenter}", "set-dev-memcache-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "memcache:app"
      }

      check {
        name     = "dev-memcache-app tcp"
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

      env {
        MEMCACHE_ADDR    = "${NOMAD_IP_dev_memcache_app}:${NOMAD_HOST_PORT_dev_memcache_app}"
        MEMCACHE_HOST    = "${NOMAD_IP_dev_memcache_app}"
        MEMCACHE_PORT    = "${NOMAD_HOST_PORT_dev_memcache_app}"
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "dev-memcache-app" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        args  = ["-p", "11211", "-m", "64"]
        image = "memcached:1.6-alpine"
        ports = ["dev_memcache_app"]
      }

      resources {
        cpu    = 100
        memory = 96
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

      port "dev_memcache_app" {
        to = 11211
      }
    }

    service {
      name     = "dev-app"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "app"
      }

      check {
        name     = "dev-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "dev-memcache-app"
      provider = "consul"
      port     = "dev_memcache_app"
      tags     = ["${node.datacenter}", "set-dev-memcache-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "memcache:app"
      }

      check {
        name     = "dev-memcache-app tcp"
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

      env {
        MEMCACHE_ADDR    = "${NOMAD_IP_dev_memcache_app}:${NOMAD_HOST_PORT_dev_memcache_app}"
        MEMCACHE_HOST    = "${NOMAD_IP_dev_memcache_app}"
        MEMCACHE_PORT    = "${NOMAD_HOST_PORT_dev_memcache_app}"
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "dev-memcache-app" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        args  = ["-p", "11211", "-m", "64"]
        image = "memcached:1.6-alpine"
        ports = ["dev_memcache_app"]
      }

      resources {
        cpu    = 100
        memory = 96
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

      port "dev_memcache_app" {
        to = 11211
      }
    }

    service {
      name     = "dev-app"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "app"
      }

      check {
        name     = "dev-app tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "dev-memcache-app"
      provider = "consul"
      port     = "dev_memcache_app"
      tags     = ["${node.datacenter}", "set-dev-memcache-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "memcache:app"
      }

      check {
        name     = "dev-memcache-app tcp"
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

      env {
        MEMCACHE_ADDR    = "${NOMAD_IP_dev_memcache_app}:${NOMAD_HOST_PORT_dev_memcache_app}"
        MEMCACHE_HOST    = "${NOMAD_IP_dev_memcache_app}"
        MEMCACHE_PORT    = "${NOMAD_HOST_PORT_dev_memcache_app}"
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "dev-memcache-app" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        args  = ["-p", "11211", "-m", "64"]
        image = "memcached:1.6-alpine"
        ports = ["dev_memcache_app"]
      }

      resources {
        cpu    = 100
        memory = 96
      }
    }
  }
}

# --- dev-blog.nomad.hcl
job "dev-blog" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "env-dev@dev"
    nomadgen_set      = "blog"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "blog-zone-a" {
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

      port "dev_memcache_blog" {
        to = 11211
      }
    }

    service {
      name     = "dev-blog"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "blog"
      }

      check {
        name     = "dev-blog tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "dev-memcache-blog"
      provider = "consul"
      port     = "dev_memcache_blog"
      tags     = ["${node.datacenter}", "set-dev-memcache-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "memcache:blog"
      }

      check {
        name     = "dev-memcache-blog tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "blog" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      env {
        MEMCACHE_ADDR    = "${NOMAD_IP_dev_memcache_blog}:${NOMAD_HOST_PORT_dev_memcache_blog}"
        MEMCACHE_HOST    = "${NOMAD_IP_dev_memcache_blog}"
        MEMCACHE_PORT    = "${NOMAD_HOST_PORT_dev_memcache_blog}"
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-blog"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-blog" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-blog") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-blog" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-blog.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "dev-memcache-blog" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        args  = ["-p", "11211", "-m", "64"]
        image = "memcached:1.6-alpine"
        ports = ["dev_memcache_blog"]
      }

      resources {
        cpu    = 100
        memory = 96
      }
    }
  }

  group "blog-zone-b" {
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

      port "dev_memcache_blog" {
        to = 11211
      }
    }

    service {
      name     = "dev-blog"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "blog"
      }

      check {
        name     = "dev-blog tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "dev-memcache-blog"
      provider = "consul"
      port     = "dev_memcache_blog"
      tags     = ["${node.datacenter}", "set-dev-memcache-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "memcache:blog"
      }

      check {
        name     = "dev-memcache-blog tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "blog" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      env {
        MEMCACHE_ADDR    = "${NOMAD_IP_dev_memcache_blog}:${NOMAD_HOST_PORT_dev_memcache_blog}"
        MEMCACHE_HOST    = "${NOMAD_IP_dev_memcache_blog}"
        MEMCACHE_PORT    = "${NOMAD_HOST_PORT_dev_memcache_blog}"
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-blog"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-blog" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-blog") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-blog" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-blog.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "dev-memcache-blog" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        args  = ["-p", "11211", "-m", "64"]
        image = "memcached:1.6-alpine"
        ports = ["dev_memcache_blog"]
      }

      resources {
        cpu    = 100
        memory = 96
      }
    }
  }

  group "blog-zone-c" {
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

      port "dev_memcache_blog" {
        to = 11211
      }
    }

    service {
      name     = "dev-blog"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "blog"
      }

      check {
        name     = "dev-blog tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    service {
      name     = "dev-memcache-blog"
      provider = "consul"
      port     = "dev_memcache_blog"
      tags     = ["${node.datacenter}", "set-dev-memcache-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "memcache:blog"
      }

      check {
        name     = "dev-memcache-blog tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "blog" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      env {
        MEMCACHE_ADDR    = "${NOMAD_IP_dev_memcache_blog}:${NOMAD_HOST_PORT_dev_memcache_blog}"
        MEMCACHE_HOST    = "${NOMAD_IP_dev_memcache_blog}"
        MEMCACHE_PORT    = "${NOMAD_HOST_PORT_dev_memcache_blog}"
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-blog"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-blog" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-blog") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-blog" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-blog.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "dev-memcache-blog" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        args  = ["-p", "11211", "-m", "64"]
        image = "memcached:1.6-alpine"
        ports = ["dev_memcache_blog"]
      }

      resources {
        cpu    = 100
        memory = 96
      }
    }
  }
}

# --- dev-psql-app.nomad.hcl
job "dev-psql-app" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "env-dev@dev"
    nomadgen_set      = "psql:app"
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
      name     = "dev-psql-app"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-dev-psql-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "psql:app"
      }

      check {
        name     = "dev-psql-app script"
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
          {{ with nomadVar "nomad/jobs/dev-psql-app" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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
      name     = "dev-psql-app"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-dev-psql-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "psql:app"
      }

      check {
        name     = "dev-psql-app script"
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
          {{ with nomadVar "nomad/jobs/dev-psql-app" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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
      name     = "dev-psql-app"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-dev-psql-app"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "psql:app"
      }

      check {
        name     = "dev-psql-app script"
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
          {{ with nomadVar "nomad/jobs/dev-psql-app" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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

# --- dev-psql-blog.nomad.hcl
job "dev-psql-blog" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "env-dev@dev"
    nomadgen_set      = "psql:blog"
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
      name     = "dev-psql-blog"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-dev-psql-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "psql:blog"
      }

      check {
        name     = "dev-psql-blog script"
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
          {{ with nomadVar "nomad/jobs/dev-psql-blog" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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
      name     = "dev-psql-blog"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-dev-psql-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "psql:blog"
      }

      check {
        name     = "dev-psql-blog script"
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
          {{ with nomadVar "nomad/jobs/dev-psql-blog" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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
      name     = "dev-psql-blog"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-dev-psql-blog"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "psql:blog"
      }

      check {
        name     = "dev-psql-blog script"
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
          {{ with nomadVar "nomad/jobs/dev-psql-blog" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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

# --- dev-worker.nomad.hcl
job "dev-worker" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "env-dev@dev"
    nomadgen_set      = "worker"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "worker-zone-a" {
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
      name     = "dev-worker"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-worker"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "worker"
      }

      check {
        name     = "dev-worker tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "worker" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      env {
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "worker-zone-b" {
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
      name     = "dev-worker"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-worker"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "worker"
      }

      check {
        name     = "dev-worker tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "worker" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      env {
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-app.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "worker-zone-c" {
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
      name     = "dev-worker"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-dev-worker"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "env-dev@dev"
        nomadgen_set         = "worker"
      }

      check {
        name     = "dev-worker tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "worker" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      env {
        PSQL_CREDENTIALS = "nomad/jobs/dev-psql-app"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/dev-psql-app" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".dev-psql-app") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/env-dev@dev/no-healthy-instance/dev-psql-app" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/dev-psql-app.env"
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
