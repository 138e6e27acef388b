package server

import (
	"net/http"

	"github.com/agentkeys/agentkeys"
)

// syncRoutes mounts the sync package's blob store under /api/v1/sync,
// behind the same API-key authentication as the rest of the API. Every
// member may keep their devices' end-to-end encrypted vaults in the
// workspace (PermViewWorkspace: every role); each call also carries its
// device's token, which sync checks.
func (s *Server) syncRoutes() []route {
	var out []route
	for _, rt := range s.sync.Routes() {
		h := rt.Handler
		out = append(out, route{Route: Route{Method: rt.Method, Path: rt.Path, Permission: agentkeys.PermViewWorkspace},
			api: func(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error { return h(w, r, a.WorkspaceID) }})
	}
	return out
}
