module meshgo.dev/mesh

go 1.26.8
