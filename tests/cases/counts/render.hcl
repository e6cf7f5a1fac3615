# --- beacon.nomad.hcl
job "beacon" {
  datacenters = ["eu-1", "eu-2"]
  type        = "service"

  meta {
    nomadgen_manifest = "counts"
    nomadgen_set      = "beacon"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "beacon" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "distinct_property"
      value     = "1"
    }

    spread {
      attribute = "${node.datacenter}"
      weight    = 100

      target "eu-1" {
        percent = 50
      }

      target "eu-2" {
        percent = 50
      }
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "beacon"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-beacon"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "beacon"
      }

      check {
        name     = "beacon tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "beacon" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}

# --- queue.nomad.hcl
job "queue" {
  datacenters = ["eu-1", "eu-2"]
  type        = "service"

  meta {
    nomadgen_manifest = "counts"
    nomadgen_set      = "queue"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "queue-eu-1" {
    count = 2

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "eu-1"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "queue"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-queue"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "queue"
      }

      check {
        name     = "queue tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "queue" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "queue-eu-2" {
    count = 2

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "eu-2"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "queue"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-queue"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "queue"
      }

      check {
        name     = "queue tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "queue" {
      driver = "docker"

      config {
        args    = ["-f", "-p", "8080", "-h", "/local"]
        command = "httpd"
        image   = "busybox:1.36"
        ports   = ["http"]
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}

# --- redis-web.nomad.hcl
job "redis-web" {
  datacenters = ["eu-1", "eu-2"]
  type        = "service"

  meta {
    nomadgen_manifest = "counts"
    nomadgen_set      = "redis:web"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "redis-eu-1" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "eu-1"
    }

    network {
      mode = "host"

      port "redis" {
        to = 6379
      }
    }

    service {
      name     = "redis-web"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-web"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "redis:web"
      }

      check {
        name     = "redis-web script"
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

  group "redis-eu-2" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "eu-2"
    }

    network {
      mode = "host"

      port "redis" {
        to = 6379
      }
    }

    service {
      name     = "redis-web"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-web"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "redis:web"
      }

      check {
        name     = "redis-web script"
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

# --- web.nomad.hcl
job "web" {
  datacenters = ["eu-1", "eu-2"]
  type        = "service"

  meta {
    nomadgen_manifest = "counts"
    nomadgen_set      = "web"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "web-eu-1" {
    count = 3

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "eu-1"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "web"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-web"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "web"
      }

      check {
        name     = "web tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "web" {
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
          {{- range service (print (env "node.datacenter") ".redis-web") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-web" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/counts/no-healthy-instance/redis-web" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-web.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "web-eu-2" {
    count = 2

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "eu-2"
    }

    network {
      mode = "host"

      port "http" {
        to = 8080
      }
    }

    service {
      name     = "web"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-web"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "counts"
        nomadgen_set         = "web"
      }

      check {
        name     = "web tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "web" {
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
          {{- range service (print (env "node.datacenter") ".redis-web") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-web" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/counts/no-healthy-instance/redis-web" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-web.env"
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
