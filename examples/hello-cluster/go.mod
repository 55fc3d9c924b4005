module hello-cluster

go 1.26.0

require meshgo.dev/mesh v0.0.0-00010101000000-000000000000

replace meshgo.dev/mesh => ../..
