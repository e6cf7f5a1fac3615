# --- cart.nomad.hcl
job "cart" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "microservices"
    nomadgen_set      = "cart"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "cart-zone-a" {
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
      name     = "cart"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-cart"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "cart"
      }

      check {
        name     = "cart tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "cart" {
      driver = "docker"

      config {
        image = "example/cart:3.0"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/redis-cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-cart.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 250
        memory = 256
      }
    }
  }

  group "cart-zone-b" {
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
      name     = "cart"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-cart"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "cart"
      }

      check {
        name     = "cart tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "cart" {
      driver = "docker"

      config {
        image = "example/cart:3.0"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/redis-cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-cart.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 250
        memory = 256
      }
    }
  }

  group "cart-zone-c" {
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
      name     = "cart"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-cart"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "cart"
      }

      check {
        name     = "cart tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "cart" {
      driver = "docker"

      config {
        image = "example/cart:3.0"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".redis-cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "redis-cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          REDIS_HOST={{ .Address | toJSON }}
          REDIS_PORT={{ .Port | toJSON }}
          REDIS_URL={{ printf "redis://%v:%v/0" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/redis-cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/redis-cart.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 250
        memory = 256
      }
    }
  }
}

# --- checkout.nomad.hcl
job "checkout" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "microservices"
    nomadgen_set      = "checkout"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "checkout-zone-a" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-a"
    }

    network {
      mode = "host"

      port "grpc" {
        to = 9000
      }
    }

    service {
      name     = "checkout"
      provider = "consul"
      port     = "grpc"
      tags     = ["${node.datacenter}", "set-checkout"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "checkout"
      }

      check {
        name     = "checkout tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "checkout" {
      driver = "docker"

      config {
        image = "example/checkout:1.4"
        ports = ["grpc"]
      }

      env {
        LOG_LEVEL        = "info"
        PSQL_CREDENTIALS = "nomad/jobs/psql-checkout"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CART_HOST={{ .Address | toJSON }}
          CART_PORT={{ .Port | toJSON }}
          CART_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CART_URL={{ printf "http://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/cart.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/psql-checkout" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".psql-checkout") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/psql-checkout" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/psql-checkout.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "checkout-zone-b" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-b"
    }

    network {
      mode = "host"

      port "grpc" {
        to = 9000
      }
    }

    service {
      name     = "checkout"
      provider = "consul"
      port     = "grpc"
      tags     = ["${node.datacenter}", "set-checkout"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "checkout"
      }

      check {
        name     = "checkout tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "checkout" {
      driver = "docker"

      config {
        image = "example/checkout:1.4"
        ports = ["grpc"]
      }

      env {
        LOG_LEVEL        = "info"
        PSQL_CREDENTIALS = "nomad/jobs/psql-checkout"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CART_HOST={{ .Address | toJSON }}
          CART_PORT={{ .Port | toJSON }}
          CART_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CART_URL={{ printf "http://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/cart.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/psql-checkout" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".psql-checkout") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/psql-checkout" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/psql-checkout.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "checkout-zone-c" {
    count = 1

    constraint {
      attribute = "${node.datacenter}"
      operator  = "="
      value     = "zone-c"
    }

    network {
      mode = "host"

      port "grpc" {
        to = 9000
      }
    }

    service {
      name     = "checkout"
      provider = "consul"
      port     = "grpc"
      tags     = ["${node.datacenter}", "set-checkout"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "checkout"
      }

      check {
        name     = "checkout tcp"
        type     = "tcp"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "checkout" {
      driver = "docker"

      config {
        image = "example/checkout:1.4"
        ports = ["grpc"]
      }

      env {
        LOG_LEVEL        = "info"
        PSQL_CREDENTIALS = "nomad/jobs/psql-checkout"
        PSQL_DATABASE    = "app"
        PSQL_USER        = "app"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CART_HOST={{ .Address | toJSON }}
          CART_PORT={{ .Port | toJSON }}
          CART_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CART_URL={{ printf "http://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/cart.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $creds := nomadVar "nomad/jobs/psql-checkout" }}
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".psql-checkout") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- with $pick }}
          PSQL_HOST={{ .Address | toJSON }}
          PSQL_PORT={{ .Port | toJSON }}
          PSQL_URL={{ printf "postgresql://app@%v:%v/app" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/psql-checkout" }}{{ end }}
          PSQL_PASSWORD={{ printf "%v" (index $creds "password") | toJSON }}
        EOT
        destination = "secrets/nomadgen/psql-checkout.env"
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

# --- frontend.nomad.hcl
job "frontend" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "microservices"
    nomadgen_set      = "frontend"
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "frontend-zone-a" {
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
      name     = "frontend"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-frontend"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "frontend"
      }

      check {
        name     = "frontend http"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "frontend" {
      driver = "docker"

      config {
        image = "example/frontend:2.1"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CART_HOST={{ .Address | toJSON }}
          CART_PORT={{ .Port | toJSON }}
          CART_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CART_URL={{ printf "http://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/cart.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".checkout") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "checkout" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CHECKOUT_HOST={{ .Address | toJSON }}
          CHECKOUT_PORT={{ .Port | toJSON }}
          CHECKOUT_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CHECKOUT_URL={{ printf "grpc://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/checkout" }}{{ end }}
        EOT
        destination = "local/nomadgen/checkout.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "frontend-zone-b" {
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
      name     = "frontend"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-frontend"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "frontend"
      }

      check {
        name     = "frontend http"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "frontend" {
      driver = "docker"

      config {
        image = "example/frontend:2.1"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CART_HOST={{ .Address | toJSON }}
          CART_PORT={{ .Port | toJSON }}
          CART_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CART_URL={{ printf "http://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/cart.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".checkout") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "checkout" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CHECKOUT_HOST={{ .Address | toJSON }}
          CHECKOUT_PORT={{ .Port | toJSON }}
          CHECKOUT_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CHECKOUT_URL={{ printf "grpc://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/checkout" }}{{ end }}
        EOT
        destination = "local/nomadgen/checkout.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }

  group "frontend-zone-c" {
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
      name     = "frontend"
      provider = "consul"
      port     = "http"
      tags     = ["${node.datacenter}", "set-frontend"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "frontend"
      }

      check {
        name     = "frontend http"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "frontend" {
      driver = "docker"

      config {
        image = "example/frontend:2.1"
        ports = ["http"]
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".cart") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "cart" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CART_HOST={{ .Address | toJSON }}
          CART_PORT={{ .Port | toJSON }}
          CART_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CART_URL={{ printf "http://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/cart" }}{{ end }}
        EOT
        destination = "local/nomadgen/cart.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data = <<-EOT
          {{- $pick := "" }}{{ $low := -1 }}
          {{- range service (print (env "node.datacenter") ".checkout") }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- if lt $low 0 }}{{ range service "checkout" }}
            {{- $i := parseInt .ServiceMeta.nomadgen_alloc_index }}
            {{- if or (lt $low 0) (lt $i $low) }}{{ $pick = . }}{{ $low = $i }}{{ end }}
          {{- end }}
          {{- end }}
          {{- with $pick }}
          CHECKOUT_HOST={{ .Address | toJSON }}
          CHECKOUT_PORT={{ .Port | toJSON }}
          CHECKOUT_ADDR={{ printf "%v:%v" .Address .Port | toJSON }}
          CHECKOUT_URL={{ printf "grpc://%v:%v" .Address .Port | toJSON }}
          {{- else }}{{ key "nomadgen/microservices/no-healthy-instance/checkout" }}{{ end }}
        EOT
        destination = "local/nomadgen/checkout.env"
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

# --- psql-checkout.nomad.hcl
job "psql-checkout" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "microservices"
    nomadgen_set      = "psql:checkout"
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
      name     = "psql-checkout"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-psql-checkout"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "psql:checkout"
      }

      check {
        name     = "psql-checkout script"
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
          {{ with nomadVar "nomad/jobs/psql-checkout" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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
      name     = "psql-checkout"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-psql-checkout"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "psql:checkout"
      }

      check {
        name     = "psql-checkout script"
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
          {{ with nomadVar "nomad/jobs/psql-checkout" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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
      name     = "psql-checkout"
      provider = "consul"
      port     = "db"
      tags     = ["${node.datacenter}", "set-psql-checkout"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "psql:checkout"
      }

      check {
        name     = "psql-checkout script"
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
          {{ with nomadVar "nomad/jobs/psql-checkout" }}POSTGRES_PASSWORD={{ .password | toJSON }}{{ end }}
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

# --- redis-cart.nomad.hcl
job "redis-cart" {
  datacenters = ["zone-a", "zone-b", "zone-c"]
  type        = "service"

  meta {
    nomadgen_manifest = "microservices"
    nomadgen_set      = "redis:cart"
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
      name     = "redis-cart"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-cart"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "redis:cart"
      }

      check {
        name     = "redis-cart script"
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
      name     = "redis-cart"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-cart"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "redis:cart"
      }

      check {
        name     = "redis-cart script"
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
      name     = "redis-cart"
      provider = "consul"
      port     = "redis"
      tags     = ["${node.datacenter}", "set-redis-cart"]

      meta {
        nomadgen_alloc_index = "${NOMAD_ALLOC_INDEX}"
        nomadgen_manifest    = "microservices"
        nomadgen_set         = "redis:cart"
      }

      check {
        name     = "redis-cart script"
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
