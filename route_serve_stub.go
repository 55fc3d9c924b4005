package mesh

import "net/http"

type routeHandler struct {
	name  string
	count int
}

func (rh *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, _ := defaultRegistry.get(rh.name)
	h.http.ServeHTTP(w, r)
}
