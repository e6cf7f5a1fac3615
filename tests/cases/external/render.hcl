# --- billing.nomad.hcl
job "billing" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "external"
    nomadgen_set      = "billing"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "billing-zone-a" {
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
      name     = "billing"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-billing"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "external"
        nomadgen_set         = "billing"
      }

      check {
        name     = "billing tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "billing" {
      driver = "docker"

      config {
        image = "example/billing:7"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- with service "legacy-db~_agent" }}{{ with index . 0 }}
          LEGACY_DB_HOST={{ .Address | toJSON }}
          LEGACY_DB_PORT={{ .Port | toJSON }}
          LEGACY_DB_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          {{- end }}{{ else }}{{ key "nomadgen/external/no-healthy-instance/legacy-db" }}{{ end }}
        EOT
        destination = "local/nomadgen/legacy-db.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-billing") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-billing" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/external/no-healthy-instance/redis-billing" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-billing.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "billing-zone-b" {
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
      name     = "billing"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-billing"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "external"
        nomadgen_set         = "billing"
      }

      check {
        name     = "billing tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "billing" {
      driver = "docker"

      config {
        image = "example/billing:7"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- with service "legacy-db~_agent" }}{{ with index . 0 }}
          LEGACY_DB_HOST={{ .Address | toJSON }}
          LEGACY_DB_PORT={{ .Port | toJSON }}
          LEGACY_DB_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          {{- end }}{{ else }}{{ key "nomadgen/external/no-healthy-instance/legacy-db" }}{{ end }}
        EOT
        destination = "local/nomadgen/legacy-db.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-billing") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-billing" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/external/no-healthy-instance/redis-billing" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-billing.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "billing-zone-c" {
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
      name     = "billing"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-billing"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "external"
        nomadgen_set         = "billing"
      }

      check {
        name     = "billing tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "billing" {
      driver = "docker"

      config {
        image = "example/billing:7"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- with service "legacy-db~_agent" }}{{ with index . 0 }}
          LEGACY_DB_HOST={{ .Address | toJSON }}
          LEGACY_DB_PORT={{ .Port | toJSON }}
          LEGACY_DB_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          {{- end }}{{ else }}{{ key "nomadgen/external/no-healthy-instance/legacy-db" }}{{ end }}
        EOT
        destination = "local/nomadgen/legacy-db.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-billing") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-billing" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/external/no-healthy-instance/redis-billing" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-billing.env"
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

# --- redis-billing.nomad.hcl
job "redis-billing" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "external"
    nomadgen_set      = "redis:billing"
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
      name     = "redis-billing"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-billing"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "external"
        nomadgen_set         = "redis:billing"
      }

      check {
        name     = "redis-billing script"
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
      name     = "redis-billing"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-billing"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "external"
        nomadgen_set         = "redis:billing"
      }

      check {
        name     = "redis-billing script"
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
      name     = "redis-billing"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-billing"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "external"
        nomadgen_set         = "redis:billing"
      }

      check {
        name     = "redis-billing script"
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
