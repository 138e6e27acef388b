package server

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/agentkeys/agentkeys"
	"github.com/agentkeys/agentkeys/server/store"
	"github.com/agentkeys/agentkeys/server/webhook"
)

// ---- webhooks ----

// webhookRequest is POST /api/v1/webhooks.
type webhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Description string   `json:"description"`
}

// webhookPatch is PATCH /api/v1/webhooks/{id}: absent fields stay.
type webhookPatch struct {
	URL         *string  `json:"url"`
	Events      []string `json:"events"`
	Description *string  `json:"description"`
	Enabled     *bool    `json:"enabled"`
}

// RunWebhooks sends webhook deliveries and scans for expiring credentials
// until ctx ends (Serve runs it; tests on Handler run it themselves).
func (s *Server) RunWebhooks(ctx context.Context) { s.webhooks.Run(ctx) }

// isSelf reports whether ap is this server's listening address.
func (s *Server) isSelf(ap netip.AddrPort) bool {
	self := s.self.Load()
	return self != nil && self.has(ap)
}

func (s *Server) checkWebhookURL(raw string) (string, error) {
	return webhook.CheckURL(raw, s.cfg.AllowLoopbackTargets, s.isSelf)
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	if err := noQuery(r); err != nil {
		return err
	}
	hs, err := ws.ListWebhooks(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": hs})
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	var in webhookRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	u, err := s.checkWebhookURL(in.URL)
	if err != nil {
		return err
	}
	h, err := ws.CreateWebhook(r.Context(), store.WebhookInput{URL: u, Events: in.Events, Description: in.Description})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"webhook": h})
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	h, err := ws.GetWebhook(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": h})
	return nil
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	var p webhookPatch
	if err := decode(r, &p); err != nil {
		return err
	}
	if p.URL != nil {
		u, err := s.checkWebhookURL(*p.URL)
		if err != nil {
			return err
		}
		p.URL = &u
	}
	h, err := ws.UpdateWebhook(r.Context(), r.PathValue("id"), store.WebhookPatch{URL: p.URL, Events: p.Events, Description: p.Description, Enabled: p.Enabled})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": h})
	return nil
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	if err := ws.DeleteWebhook(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	h, err := ws.RotateWebhookSecret(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhook": h})
	return nil
}

func (s *Server) testWebhook(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	id, err := ws.SendTestEvent(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.webhooks.Notify()
	writeJSON(w, http.StatusAccepted, map[string]any{"eventId": id})
	return nil
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	q, err := query(r, "limit", "before")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit")
	if err != nil {
		return err
	}
	ds, err := ws.ListDeliveries(r.Context(), r.PathValue("id"), int(limit), q.Get("before"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": ds})
	return nil
}

func (s *Server) redeliver(w http.ResponseWriter, r *http.Request, a *agentkeys.Actor) error {
	ws := s.vault(r, a)
	d, err := ws.Redeliver(r.Context(), r.PathValue("id"), r.PathValue("deliveryId"))
	if err != nil {
		return err
	}
	s.webhooks.Notify()
	writeJSON(w, http.StatusAccepted, map[string]any{"delivery": d})
	return nil
}
