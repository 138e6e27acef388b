package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys/server/store"
)

// syncRoutes mounts the sync package's blob store under /api/v1/sync,
// behind the same workspace-key authentication as the rest of the API
// (each call also carries its device's token, which sync checks).
func (s *Server) syncRoutes() []route {
	var out []route
	for _, rt := range s.sync.Routes() {
		h := rt.Handler
		out = append(out, route{Route: Route{Method: rt.Method, Path: rt.Path, Auth: true},
			api: func(w http.ResponseWriter, r *http.Request, ws *store.Workspace) error { return h(w, r, ws.ID()) }})
	}
	return out
}
